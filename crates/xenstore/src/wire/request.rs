//! Requests: what a client sends, typed. Clients [`Request::encode`] them;
//! servers [`Request::decode`] a received [`Message`] into the same type,
//! borrowing from its payload.
//!
//! Payload layouts follow xenstored 4.17: one NUL-terminated string per
//! argument, except `XS_WRITE` whose value follows the path's NUL raw and
//! unterminated; `XS_DIRECTORY_PART` carries the path and a decimal *byte*
//! offset into the child list; `XS_TRANSACTION_END` carries `T` (commit)
//! or `F` (abort); argument-less requests carry a single NUL, as
//! libxenstore sends them.

use super::path::{PathRule, check_path, check_token};
use super::{Message, MsgType};
use crate::{DomId, Error, Perm, Result, TxId};

/// One request, borrowing its strings.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `XS_CONTROL` (a.k.a. `XS_DEBUG`) with its string arguments.
    Control {
        args: Vec<&'a str>,
    },
    Read {
        path: &'a str,
    },
    Write {
        path: &'a str,
        value: &'a [u8],
    },
    Mkdir {
        path: &'a str,
    },
    Rm {
        path: &'a str,
    },
    Directory {
        path: &'a str,
    },
    /// `offset` is a byte offset into the NUL-separated child list.
    DirectoryPart {
        path: &'a str,
        offset: u32,
    },
    GetPerms {
        path: &'a str,
    },
    SetPerms {
        path: &'a str,
        perms: Vec<Perm>,
    },
    Watch {
        path: &'a str,
        token: &'a str,
    },
    Unwatch {
        path: &'a str,
        token: &'a str,
    },
    TransactionStart,
    TransactionEnd {
        commit: bool,
    },
    GetDomainPath {
        domid: DomId,
    },
    IsDomainIntroduced {
        domid: DomId,
    },
    /// `mfn` is the guest frame of the ring page, `evtchn` its event channel.
    Introduce {
        domid: DomId,
        mfn: u64,
        evtchn: u32,
    },
    Release {
        domid: DomId,
    },
    Resume {
        domid: DomId,
    },
    SetTarget {
        domid: DomId,
        target: DomId,
    },
    ResetWatches,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl<'a> Request<'a> {
    /// The message type this request is sent as.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Control { .. } => MsgType::Control,
            Request::Read { .. } => MsgType::Read,
            Request::Write { .. } => MsgType::Write,
            Request::Mkdir { .. } => MsgType::Mkdir,
            Request::Rm { .. } => MsgType::Rm,
            Request::Directory { .. } => MsgType::Directory,
            Request::DirectoryPart { .. } => MsgType::DirectoryPart,
            Request::GetPerms { .. } => MsgType::GetPerms,
            Request::SetPerms { .. } => MsgType::SetPerms,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::GetDomainPath { .. } => MsgType::GetDomainPath,
            Request::IsDomainIntroduced { .. } => MsgType::IsDomainIntroduced,
            Request::Introduce { .. } => MsgType::Introduce,
            Request::Release { .. } => MsgType::Release,
            Request::Resume { .. } => MsgType::Resume,
            Request::SetTarget { .. } => MsgType::SetTarget,
            Request::ResetWatches => MsgType::ResetWatches,
        }
    }

    /// The path (or first argument) of the request, for error messages.
    pub fn subject(&self) -> String {
        match self {
            Request::Read { path }
            | Request::Write { path, .. }
            | Request::Mkdir { path }
            | Request::Rm { path }
            | Request::Directory { path }
            | Request::DirectoryPart { path, .. }
            | Request::GetPerms { path }
            | Request::SetPerms { path, .. }
            | Request::Watch { path, .. }
            | Request::Unwatch { path, .. } => (*path).to_owned(),
            Request::Control { args } => args.first().map(|a| (*a).to_owned()).unwrap_or_default(),
            Request::GetDomainPath { domid }
            | Request::IsDomainIntroduced { domid }
            | Request::Introduce { domid, .. }
            | Request::Release { domid }
            | Request::Resume { domid }
            | Request::SetTarget { domid, .. } => domid.to_string(),
            Request::TransactionStart | Request::TransactionEnd { .. } | Request::ResetWatches => {
                String::new()
            }
        }
    }

    /// Checks paths and tokens as xenstored would, before sending.
    /// `relative_ok` says whether paths relative to the domain home are
    /// accepted for node operations.
    pub fn validate(&self, relative_ok: bool) -> Result<()> {
        let node = PathRule::NODE.with_relative(relative_ok);
        match self {
            Request::Read { path }
            | Request::Write { path, .. }
            | Request::Mkdir { path }
            | Request::Rm { path }
            | Request::Directory { path }
            | Request::DirectoryPart { path, .. } => check_path(path, node),
            // xenstored 4.17 answers EINVAL to GET_PERMS on a special path
            // but accepts SET_PERMS on one (checked against the daemon).
            Request::GetPerms { path } => check_path(path, node),
            Request::SetPerms { path, perms } => {
                check_path(path, node.with_special())?;
                if perms.is_empty() {
                    return Err(Error::BadRequest {
                        op: "SET_PERMS",
                        what: "no permission entries (the owner entry is required)".into(),
                    });
                }
                Ok(())
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                check_path(path, node.with_special())?;
                check_token(token)
            }
            Request::Control { args } => {
                if args.iter().any(|a| a.as_bytes().contains(&0)) {
                    return Err(Error::BadRequest {
                        op: "CONTROL",
                        what: "argument contains a NUL byte".into(),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The payload bytes.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Request::Control { args } => args.iter().for_each(|a| push_str(&mut out, a)),
            Request::Read { path }
            | Request::Mkdir { path }
            | Request::Rm { path }
            | Request::Directory { path }
            | Request::GetPerms { path } => push_str(&mut out, path),
            Request::Write { path, value } => {
                push_str(&mut out, path);
                out.extend_from_slice(value);
            }
            Request::DirectoryPart { path, offset } => {
                push_str(&mut out, path);
                push_str(&mut out, &offset.to_string());
            }
            Request::SetPerms { path, perms } => {
                push_str(&mut out, path);
                perms
                    .iter()
                    .for_each(|p| push_str(&mut out, &p.to_string()));
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                push_str(&mut out, path);
                push_str(&mut out, token);
            }
            Request::TransactionStart | Request::ResetWatches => out.push(0),
            Request::TransactionEnd { commit } => {
                push_str(&mut out, if *commit { "T" } else { "F" })
            }
            Request::GetDomainPath { domid }
            | Request::IsDomainIntroduced { domid }
            | Request::Release { domid }
            | Request::Resume { domid } => push_str(&mut out, &domid.to_string()),
            Request::Introduce { domid, mfn, evtchn } => {
                push_str(&mut out, &domid.to_string());
                push_str(&mut out, &mfn.to_string());
                push_str(&mut out, &evtchn.to_string());
            }
            Request::SetTarget { domid, target } => {
                push_str(&mut out, &domid.to_string());
                push_str(&mut out, &target.to_string());
            }
        }
        out
    }

    /// The whole message, refusing a payload over the limit
    /// ([`Error::PayloadTooLarge`]). Does not validate paths: see
    /// [`Request::validate`].
    pub fn encode(&self, req_id: u32, tx: TxId) -> Result<Message> {
        Message::new(self.msg_type(), req_id, tx, self.payload())
    }

    /// Reads a request out of a received message (server side). Anything
    /// malformed is [`Error::BadRequest`] (xenstored answers `EINVAL`).
    pub fn decode(msg: &'a Message) -> Result<Request<'a>> {
        let ty = msg.msg_type().map_err(|u| Error::BadRequest {
            op: "UNKNOWN",
            what: format!("unknown message type {}", u.0),
        })?;
        decode_payload(ty, &msg.payload)
    }
}

fn decode_payload(ty: MsgType, payload: &[u8]) -> Result<Request<'_>> {
    let op = ty.as_str();
    let bad = |what: &str| Error::BadRequest {
        op,
        what: what.to_owned(),
    };
    let strings = || -> Result<Vec<&str>> {
        split_strings(payload).ok_or_else(|| bad("arguments not NUL-terminated UTF-8 strings"))
    };
    let exactly = |n: usize| -> Result<Vec<&str>> {
        let v = strings()?;
        if v.len() != n {
            return Err(bad(&format!("expected {n} argument(s), got {}", v.len())));
        }
        Ok(v)
    };
    let num =
        |s: &str| -> Result<u64> { s.parse::<u64>().map_err(|_| bad("not a decimal number")) };
    let domid =
        |s: &str| -> Result<DomId> { s.parse::<DomId>().map_err(|_| bad("not a domain id")) };
    Ok(match ty {
        MsgType::Control => Request::Control { args: strings()? },
        MsgType::Read => Request::Read {
            path: exactly(1)?[0],
        },
        MsgType::Mkdir => Request::Mkdir {
            path: exactly(1)?[0],
        },
        MsgType::Rm => Request::Rm {
            path: exactly(1)?[0],
        },
        MsgType::Directory => Request::Directory {
            path: exactly(1)?[0],
        },
        MsgType::GetPerms => Request::GetPerms {
            path: exactly(1)?[0],
        },
        MsgType::Write => {
            let nul = payload
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| bad("path not NUL-terminated"))?;
            let path = std::str::from_utf8(&payload[..nul]).map_err(|_| bad("path not UTF-8"))?;
            Request::Write {
                path,
                value: &payload[nul + 1..],
            }
        }
        MsgType::DirectoryPart => {
            let v = exactly(2)?;
            let offset = u32::try_from(num(v[1])?).map_err(|_| bad("offset out of range"))?;
            Request::DirectoryPart { path: v[0], offset }
        }
        MsgType::SetPerms => {
            let v = strings()?;
            let (path, rest) = v.split_first().ok_or_else(|| bad("no path"))?;
            if rest.is_empty() {
                return Err(bad("no permission entries"));
            }
            let perms = rest
                .iter()
                .map(|p| p.parse::<Perm>())
                .collect::<Result<Vec<_>>>()?;
            Request::SetPerms { path, perms }
        }
        MsgType::Watch | MsgType::Unwatch => {
            let v = exactly(2)?;
            if ty == MsgType::Watch {
                Request::Watch {
                    path: v[0],
                    token: v[1],
                }
            } else {
                Request::Unwatch {
                    path: v[0],
                    token: v[1],
                }
            }
        }
        MsgType::TransactionStart => Request::TransactionStart,
        MsgType::ResetWatches => Request::ResetWatches,
        MsgType::TransactionEnd => match exactly(1)?[0] {
            "T" => Request::TransactionEnd { commit: true },
            "F" => Request::TransactionEnd { commit: false },
            _ => return Err(bad("expected T or F")),
        },
        MsgType::GetDomainPath => Request::GetDomainPath {
            domid: domid(exactly(1)?[0])?,
        },
        MsgType::IsDomainIntroduced => Request::IsDomainIntroduced {
            domid: domid(exactly(1)?[0])?,
        },
        MsgType::Release => Request::Release {
            domid: domid(exactly(1)?[0])?,
        },
        MsgType::Resume => Request::Resume {
            domid: domid(exactly(1)?[0])?,
        },
        MsgType::Introduce => {
            let v = exactly(3)?;
            let evtchn =
                u32::try_from(num(v[2])?).map_err(|_| bad("event channel out of range"))?;
            Request::Introduce {
                domid: domid(v[0])?,
                mfn: num(v[1])?,
                evtchn,
            }
        }
        MsgType::SetTarget => {
            let v = exactly(2)?;
            Request::SetTarget {
                domid: domid(v[0])?,
                target: domid(v[1])?,
            }
        }
        MsgType::WatchEvent | MsgType::Error => return Err(bad("not a request type")),
    })
}

/// Splits a payload of NUL-terminated UTF-8 strings; `None` if the last
/// one is unterminated or one is not UTF-8. An empty payload is no strings.
pub fn split_strings(payload: &[u8]) -> Option<Vec<&str>> {
    let body = match payload {
        [] => return Some(Vec::new()),
        [body @ .., 0] => body,
        _ => return None,
    };
    body.split(|&b| b == 0)
        .map(|s| std::str::from_utf8(s).ok())
        .collect()
}
