//! The crate's one error type, and the xenstore errno names of `xs_wire.h`.

use std::fmt;
use std::str::FromStr;

/// The error names a xenstore daemon sends in an `XS_ERROR` reply
/// (`xsd_errors` in `xs_wire.h`), plus `EQUOTA`, which some daemons use.
#[allow(missing_docs, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    EQUOTA,
}

impl Errno {
    /// Every errno, in `xs_wire.h` order.
    pub const ALL: [Errno; 17] = [
        Errno::EINVAL,
        Errno::EACCES,
        Errno::EEXIST,
        Errno::EISDIR,
        Errno::ENOENT,
        Errno::ENOMEM,
        Errno::ENOSPC,
        Errno::EIO,
        Errno::ENOTEMPTY,
        Errno::ENOSYS,
        Errno::EROFS,
        Errno::EBUSY,
        Errno::EAGAIN,
        Errno::EISCONN,
        Errno::E2BIG,
        Errno::EPERM,
        Errno::EQUOTA,
    ];

    /// The name as sent on the wire (`"ENOENT"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::EACCES => "EACCES",
            Errno::EEXIST => "EEXIST",
            Errno::EISDIR => "EISDIR",
            Errno::ENOENT => "ENOENT",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOSPC => "ENOSPC",
            Errno::EIO => "EIO",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENOSYS => "ENOSYS",
            Errno::EROFS => "EROFS",
            Errno::EBUSY => "EBUSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EISCONN => "EISCONN",
            Errno::E2BIG => "E2BIG",
            Errno::EPERM => "EPERM",
            Errno::EQUOTA => "EQUOTA",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Errno {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Errno, ()> {
        Errno::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or(())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to xenstore. Variants name the
/// failed action and carry the path or message type involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The daemon answered a request with `XS_ERROR`.
    #[error("xenstore {op} {path}: {errno}")]
    Daemon {
        /// The request type, e.g. `READ`.
        op: &'static str,
        /// The path (or other first argument) of the request.
        path: String,
        /// What the daemon said.
        errno: Errno,
    },
    /// A path was rejected before sending: NUL, too long, relative where
    /// absolute is needed, or otherwise malformed.
    #[error("invalid xenstore path {path:?}: {why}")]
    InvalidPath {
        /// The offending path (lossily printable).
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A request payload would exceed `XENSTORE_PAYLOAD_MAX`.
    #[error("xenstore {op} payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// The request type.
        op: &'static str,
        /// Its payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A permission string could not be parsed.
    #[error("invalid xenstore permission {text:?}")]
    BadPermission {
        /// The text.
        text: String,
        /// Always `EINVAL`, for callers matching on errno.
        errno: Errno,
    },
    /// No daemon could be reached at any of the places tried.
    #[error("cannot connect to xenstore (tried {tried})")]
    Connect {
        /// The places tried, in order.
        tried: String,
        /// The last failure.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("xenstore connection I/O during {op}")]
    Io {
        /// The request type in flight.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The daemon closed the connection (possibly mid-reply).
    #[error("xenstore daemon closed the connection during {op}")]
    Closed {
        /// The request type in flight.
        op: &'static str,
    },
    /// No reply within the request timeout.
    #[error("xenstore {op} {path}: no reply within {timeout_ms} ms")]
    Timeout {
        /// The request type.
        op: &'static str,
        /// Its first argument.
        path: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The daemon sent something that is not a valid reply.
    #[error("xenstore protocol error during {op}: {what}")]
    Protocol {
        /// The request type in flight.
        op: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A watch token was rejected before sending (it contains a NUL).
    #[error("invalid xenstore watch token {token:?}: contains a NUL byte")]
    InvalidToken {
        /// The offending token.
        token: String,
    },
    /// A received request is malformed (server side; xenstored answers
    /// `EINVAL`), or a request was refused before sending.
    #[error("malformed xenstore {op} request: {what}")]
    BadRequest {
        /// The request type.
        op: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A message header announced a payload over the limit; the stream
    /// cannot be resynchronised after it.
    #[error("xenstore message announces {len} payload bytes, over the limit of {max}")]
    MessageTooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// The connection failed earlier (timeout, protocol error, closed) and
    /// is no longer used: open a new one.
    #[error("xenstore {op}: connection unusable after an earlier failure ({earlier})")]
    Poisoned {
        /// The request type refused.
        op: &'static str,
        /// The earlier failure, as text.
        earlier: String,
    },
    /// More distinct watch events arrived between replies than the client
    /// keeps ([`crate::client::MAX_QUEUED_EVENTS`]): some were lost. Not a
    /// failure of the connection; the caller must re-read the state it
    /// watches, then wait again.
    #[error(
        "xenstore watch events overflowed ({dropped} lost, {discarded} queued ones discarded); re-read state"
    )]
    WatchEventsOverflowed {
        /// Events not kept.
        dropped: u64,
        /// Queued events thrown away with them.
        discarded: usize,
    },
    /// A large directory kept changing while it was read in parts.
    #[error("xenstore directory {path} kept changing while read in parts ({attempts} attempts)")]
    DirectoryChanging {
        /// The directory.
        path: String,
        /// How many times reading restarted.
        attempts: u32,
    },
    /// A transaction kept failing with `EAGAIN`.
    #[error("xenstore transaction still conflicting after {attempts} attempts")]
    TransactionConflict {
        /// How many times it was run.
        attempts: u32,
    },
}

impl Error {
    /// The xenstore errno this error carries, if any. Local checks map to
    /// the errno the daemon would have sent (`EINVAL`, `E2BIG`).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Daemon { errno, .. } | Error::BadPermission { errno, .. } => Some(*errno),
            Error::InvalidPath { .. } | Error::InvalidToken { .. } | Error::BadRequest { .. } => {
                Some(Errno::EINVAL)
            }
            Error::PayloadTooLarge { .. } => Some(Errno::E2BIG),
            Error::TransactionConflict { .. } => Some(Errno::EAGAIN),
            _ => None,
        }
    }

    /// True for "no such node".
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(Errno::ENOENT)
    }

    /// Whether this is [`Error::WatchEventsOverflowed`]: watched state must
    /// be re-read.
    pub fn is_events_overflow(&self) -> bool {
        matches!(self, Error::WatchEventsOverflowed { .. })
    }

    /// True for a transaction conflict (`EAGAIN`): re-run the transaction.
    pub fn is_again(&self) -> bool {
        matches!(
            self,
            Error::Daemon {
                errno: Errno::EAGAIN,
                ..
            }
        )
    }
}
