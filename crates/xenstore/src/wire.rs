//! The xenstore wire protocol of `xen/include/public/io/xs_wire.h`, pure:
//! no I/O here, only bytes in and bytes out, so the client, the in-memory
//! server and the fuzz target share one codec.
//!
//! A message is a 16-byte header (four little-endian `u32`: type, request
//! id, transaction id, payload length) followed by the payload, at most
//! [`PAYLOAD_MAX`] bytes. Requests carry NUL-terminated strings (the value
//! of `XS_WRITE` is raw and unterminated); replies carry a value, a
//! NUL-separated list, `"OK\0"`, or, for `XS_ERROR`, an errno name.
//!
//! - this module: [`MsgType`], [`Header`], [`Message`], the incremental
//!   [`Decoder`] and the limits;
//! - [`request`]: typed [`Request`]s, encoded by clients and decoded by
//!   servers;
//! - [`reply`]: reply parsers for clients and reply builders for servers;
//! - [`path`]: the path checks xenstored applies, done before sending.
//!
//! The decoder never panics and refuses a header whose length exceeds
//! [`PAYLOAD_MAX`], as xenstored does (it drops such a connection): after
//! that the stream cannot be resynchronised, so the decoder keeps failing.

pub mod path;
pub mod reply;
pub mod request;

pub use path::{PathRule, check_path};
pub use reply::DirectoryPart;
pub use request::Request;

use std::fmt;

use crate::{Error, Result, TxId};

/// `XENSTORE_PAYLOAD_MAX`: the largest payload of one message.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest relative path (and node name
/// below a domain's home).
pub const REL_PATH_MAX: usize = 2048;
/// Length of the message header.
pub const HEADER_LEN: usize = 16;

/// The message types of `enum xsd_sockmsg_type`, with their wire numbers.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgType {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    // 20 was XS_RESTRICT, removed from the protocol.
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    /// Every type, in wire order.
    pub const ALL: [MsgType; 22] = [
        MsgType::Control,
        MsgType::Directory,
        MsgType::Read,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
        MsgType::TransactionEnd,
        MsgType::Introduce,
        MsgType::Release,
        MsgType::GetDomainPath,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::SetPerms,
        MsgType::WatchEvent,
        MsgType::Error,
        MsgType::IsDomainIntroduced,
        MsgType::Resume,
        MsgType::SetTarget,
        MsgType::ResetWatches,
        MsgType::DirectoryPart,
    ];

    /// The wire number.
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The name without the `XS_` prefix, as used in error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            MsgType::Control => "CONTROL",
            MsgType::Directory => "DIRECTORY",
            MsgType::Read => "READ",
            MsgType::GetPerms => "GET_PERMS",
            MsgType::Watch => "WATCH",
            MsgType::Unwatch => "UNWATCH",
            MsgType::TransactionStart => "TRANSACTION_START",
            MsgType::TransactionEnd => "TRANSACTION_END",
            MsgType::Introduce => "INTRODUCE",
            MsgType::Release => "RELEASE",
            MsgType::GetDomainPath => "GET_DOMAIN_PATH",
            MsgType::Write => "WRITE",
            MsgType::Mkdir => "MKDIR",
            MsgType::Rm => "RM",
            MsgType::SetPerms => "SET_PERMS",
            MsgType::WatchEvent => "WATCH_EVENT",
            MsgType::Error => "ERROR",
            MsgType::IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
            MsgType::Resume => "RESUME",
            MsgType::SetTarget => "SET_TARGET",
            MsgType::ResetWatches => "RESET_WATCHES",
            MsgType::DirectoryPart => "DIRECTORY_PART",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wire number that names no message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownMsgType(pub u32);

impl TryFrom<u32> for MsgType {
    type Error = UnknownMsgType;

    fn try_from(n: u32) -> std::result::Result<MsgType, UnknownMsgType> {
        MsgType::ALL
            .iter()
            .copied()
            .find(|t| t.number() == n)
            .ok_or(UnknownMsgType(n))
    }
}

/// The 16-byte message header. The type is kept raw so that a peer's
/// unknown type can be reported (client) or answered (server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type number.
    pub ty: u32,
    /// Request id, echoed in the reply (0 in watch events).
    pub req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// The little-endian wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, v) in [self.ty, self.req_id, self.tx_id, self.len]
            .into_iter()
            .enumerate()
        {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads a header from its wire form.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let word = |i: usize| {
            u32::from_le_bytes([
                bytes[i * 4],
                bytes[i * 4 + 1],
                bytes[i * 4 + 2],
                bytes[i * 4 + 3],
            ])
        };
        Header {
            ty: word(0),
            req_id: word(1),
            tx_id: word(2),
            len: word(3),
        }
    }

    /// The message type, if the number is a known one.
    pub fn msg_type(&self) -> std::result::Result<MsgType, UnknownMsgType> {
        MsgType::try_from(self.ty)
    }

    /// The transaction id as a [`TxId`].
    pub fn tx(&self) -> TxId {
        TxId(self.tx_id)
    }
}

/// One whole message: header and payload (`header.len == payload.len()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// Builds a message, refusing a payload over [`PAYLOAD_MAX`].
    pub fn new(ty: MsgType, req_id: u32, tx: TxId, payload: Vec<u8>) -> Result<Message> {
        if payload.len() > PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge {
                op: ty.as_str(),
                len: payload.len(),
                max: PAYLOAD_MAX,
            });
        }
        let header = Header {
            ty: ty.number(),
            req_id,
            tx_id: tx.0,
            // Cannot truncate: bounded by PAYLOAD_MAX above.
            len: payload.len() as u32,
        };
        Ok(Message { header, payload })
    }

    /// The message type, if known.
    pub fn msg_type(&self) -> std::result::Result<MsgType, UnknownMsgType> {
        self.header.msg_type()
    }

    /// Header followed by payload, ready to write.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        let mut header = self.header;
        header.len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Reassembles messages from a byte stream delivered in arbitrary pieces.
///
/// `push` bytes as they arrive, then call `next_message` until it returns
/// `Ok(None)`. A header announcing more than the payload limit is an
/// error, and stays one: the stream cannot be trusted after it.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_payload: usize,
    failed: Option<u32>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the standard [`PAYLOAD_MAX`] limit.
    pub fn new() -> Decoder {
        Decoder::with_limit(PAYLOAD_MAX)
    }

    /// A decoder with another payload limit (tests, or a daemon configured
    /// for larger messages).
    pub fn with_limit(max_payload: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_payload,
            failed: None,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        if let Some(len) = self.failed {
            return Err(self.too_large(len));
        }
        let pending = &self.buf[self.start..];
        let Some(head) = pending.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::decode(head);
        let len = header.len as usize;
        if len > self.max_payload {
            self.failed = Some(header.len);
            return Err(self.too_large(header.len));
        }
        let Some(payload) = pending.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let msg = Message {
            header,
            payload: payload.to_vec(),
        };
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(msg))
    }

    fn too_large(&self, len: u32) -> Error {
        Error::MessageTooLarge {
            len,
            max: self.max_payload,
        }
    }
}

#[cfg(test)]
mod tests;
