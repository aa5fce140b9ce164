//! Replies: parsers for the client (each failure is [`Error::Protocol`]
//! naming the request), and builders for a server, byte-compatible with
//! what xenstored 4.17 sends.
//!
//! - `XS_ERROR`: the errno name, NUL-terminated (`"ENOENT\0"`).
//! - acknowledgements: `"OK\0"`.
//! - lists (`XS_DIRECTORY`, `XS_GET_PERMS`): each item NUL-terminated; an
//!   empty list is an empty payload.
//! - `XS_WATCH_EVENT` (request id 0): `"path\0token\0"`.
//! - `XS_DIRECTORY_PART`: the node's generation (hex) NUL-terminated, then
//!   as many NUL-terminated children as fit from the requested byte offset;
//!   the last part ends with an extra NUL (so `"\0\0"`), and an offset at or
//!   past the end gives `"gen\0\0"`. A changed generation between parts
//!   means the directory changed: the reader starts over.

use super::request::split_strings;
use super::{Message, MsgType, PAYLOAD_MAX};
use crate::{Errno, Error, Perm, Result, TxId, WatchEvent};

fn protocol(op: MsgType, what: impl Into<String>) -> Error {
    Error::Protocol {
        op: op.as_str(),
        what: what.into(),
    }
}

fn strings(op: MsgType, payload: &[u8]) -> Result<Vec<&str>> {
    split_strings(payload).ok_or_else(|| protocol(op, "reply is not NUL-terminated UTF-8 strings"))
}

fn single(op: MsgType, payload: &[u8]) -> Result<&str> {
    let v = strings(op, payload)?;
    match v.as_slice() {
        [one] => Ok(one),
        _ => Err(protocol(
            op,
            format!("expected one string, got {}", v.len()),
        )),
    }
}

/// The errno of an `XS_ERROR` reply to `op`.
pub fn parse_error(op: MsgType, payload: &[u8]) -> Result<Errno> {
    let name = single(op, payload)?;
    name.parse::<Errno>()
        .map_err(|()| protocol(op, format!("unknown xenstore error {name:?}")))
}

/// An `"OK\0"` acknowledgement.
pub fn parse_ok(op: MsgType, payload: &[u8]) -> Result<()> {
    match payload {
        b"OK\0" => Ok(()),
        _ => Err(protocol(
            op,
            format!("expected OK, got {:?}", String::from_utf8_lossy(payload)),
        )),
    }
}

/// A list of NUL-terminated names (`XS_DIRECTORY`).
pub fn parse_list(op: MsgType, payload: &[u8]) -> Result<Vec<String>> {
    Ok(strings(op, payload)?
        .into_iter()
        .map(str::to_owned)
        .collect())
}

/// A permission list (`XS_GET_PERMS`), owner first.
pub fn parse_perms(op: MsgType, payload: &[u8]) -> Result<Vec<Perm>> {
    let v = strings(op, payload)?;
    if v.is_empty() {
        return Err(protocol(op, "empty permission list"));
    }
    v.into_iter()
        .map(|p| {
            p.parse::<Perm>()
                .map_err(|_| protocol(op, format!("bad permission {p:?}")))
        })
        .collect()
}

/// A single string (`XS_GET_DOMAIN_PATH`).
pub fn parse_string(op: MsgType, payload: &[u8]) -> Result<String> {
    single(op, payload).map(str::to_owned)
}

/// A transaction id (`XS_TRANSACTION_START`), decimal.
pub fn parse_tx_id(op: MsgType, payload: &[u8]) -> Result<TxId> {
    let s = single(op, payload)?;
    s.parse::<u32>()
        .map(TxId)
        .map_err(|_| protocol(op, format!("bad transaction id {s:?}")))
}

/// `"T"` / `"F"` (`XS_IS_DOMAIN_INTRODUCED`).
pub fn parse_bool(op: MsgType, payload: &[u8]) -> Result<bool> {
    match single(op, payload)? {
        "T" => Ok(true),
        "F" => Ok(false),
        other => Err(protocol(op, format!("expected T or F, got {other:?}"))),
    }
}

/// A watch event payload: path, then token; later strings are ignored.
pub fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent> {
    let v = strings(MsgType::WatchEvent, payload)?;
    match v.as_slice() {
        [path, token, ..] => Ok(WatchEvent {
            path: (*path).to_owned(),
            token: (*token).to_owned(),
        }),
        _ => Err(protocol(
            MsgType::WatchEvent,
            "watch event without path and token",
        )),
    }
}

/// One `XS_DIRECTORY_PART` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPart {
    /// The node's generation; a change between parts means start over.
    pub generation: String,
    /// The children in this part.
    pub children: Vec<String>,
    /// Bytes of child list this part covers: add it to the next offset.
    pub chunk_len: usize,
    /// This was the last part.
    pub complete: bool,
}

/// Parses an `XS_DIRECTORY_PART` reply.
pub fn parse_directory_part(payload: &[u8]) -> Result<DirectoryPart> {
    let op = MsgType::DirectoryPart;
    let nul = payload
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| protocol(op, "generation not NUL-terminated"))?;
    let generation = std::str::from_utf8(&payload[..nul])
        .map_err(|_| protocol(op, "generation not UTF-8"))?
        .to_owned();
    let rest = &payload[nul + 1..];
    let (chunk, complete) = match rest {
        [] | [0] => (&rest[..0], true),
        [.., 0, 0] => (&rest[..rest.len() - 1], true),
        [.., 0] => (rest, false),
        _ => return Err(protocol(op, "child list not NUL-terminated")),
    };
    let children = parse_list(op, chunk)?;
    if children.iter().any(String::is_empty) {
        return Err(protocol(op, "empty child name"));
    }
    Ok(DirectoryPart {
        generation,
        children,
        chunk_len: chunk.len(),
        complete,
    })
}

/// `"OK\0"`.
pub fn ok_payload() -> Vec<u8> {
    b"OK\0".to_vec()
}

/// Each item NUL-terminated.
pub fn list_payload<I, S>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_ref().as_bytes());
        out.push(0);
    }
    out
}

/// A permission list payload.
pub fn perms_payload(perms: &[Perm]) -> Vec<u8> {
    list_payload(perms.iter().map(Perm::to_string))
}

/// The `XS_ERROR` reply to request `req_id`.
pub fn error_message(req_id: u32, tx: TxId, errno: Errno) -> Message {
    let mut payload = errno.as_str().as_bytes().to_vec();
    payload.push(0);
    // Errno names are a few bytes: always within the limit.
    let len = payload.len() as u32;
    Message {
        header: super::Header {
            ty: MsgType::Error.number(),
            req_id,
            tx_id: tx.0,
            len,
        },
        payload,
    }
}

/// An `XS_WATCH_EVENT` message (request id 0, no transaction).
pub fn watch_event_message(path: &str, token: &str) -> Result<Message> {
    Message::new(
        MsgType::WatchEvent,
        0,
        TxId::NONE,
        list_payload([path, token]),
    )
}

/// The `XS_DIRECTORY_PART` reply payload for a node whose child list is
/// `children` (each name NUL-terminated, in store order), generation
/// `generation`, from byte `offset`, cut as xenstored cuts it.
pub fn directory_part_payload(generation: &str, children: &[u8], offset: usize) -> Vec<u8> {
    let mut out = generation.as_bytes().to_vec();
    out.push(0);
    let Some(rest) = children.get(offset..).filter(|r| !r.is_empty()) else {
        out.push(0);
        return out;
    };
    let maxlen = PAYLOAD_MAX.saturating_sub(out.len() + 1);
    let mut len = 0;
    loop {
        let name_len = rest[len..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(rest.len() - len);
        if len + name_len >= maxlen {
            break;
        }
        len = (len + name_len + 1).min(rest.len());
        if len == rest.len() {
            break;
        }
    }
    out.extend_from_slice(&rest[..len]);
    if len == rest.len() {
        out.push(0);
    }
    out
}
