//! The QMP client's error type: one variant per failed action, carrying the
//! command and the socket path where they are known.

use std::path::PathBuf;
use std::time::Duration;

/// Errors of the QMP client. A QEMU that dies, closes the socket or never
/// answers comes back as one of these, never as a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The QMP socket could not be connected to (missing, not a socket,
    /// nobody listening, permission).
    #[error("connecting to the QMP socket {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The QMP path exists but is not a socket.
    #[error("{path} is not a socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Setting the read timeout on the stream failed.
    #[error("setting the QMP read timeout")]
    SetTimeout(#[source] std::io::Error),
    /// The peer did not send a QMP greeting: it is not QEMU's QMP socket.
    #[error("the peer is not a QMP server: {detail}")]
    NotQmp {
        /// What was received instead (shortened).
        detail: String,
    },
    /// Connected, but no greeting came: not QEMU's QMP socket, or another
    /// client holds it (QEMU serves one QMP client at a time).
    #[error(
        "no QMP greeting within {timeout:?}: not a QMP socket, or another client is connected to it (QEMU serves one at a time)"
    )]
    NoGreeting {
        /// How long vusb waited.
        timeout: Duration,
    },
    /// Writing a command to the socket failed.
    #[error("sending {command} to QEMU")]
    Send {
        /// The QMP command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading from the socket failed (other than a timeout or EOF).
    #[error("receiving the answer to {command} from QEMU")]
    Receive {
        /// The QMP command (or `greeting` / `event`).
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// QEMU closed the connection (it exited or was killed) before
    /// answering.
    #[error("QEMU closed the QMP connection while waiting for {command} (did it exit?)")]
    Closed {
        /// The QMP command (or `greeting` / `event`).
        command: String,
    },
    /// No answer within the command's timeout.
    #[error("QEMU did not answer {command} within {timeout:?}")]
    Timeout {
        /// The QMP command.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A line from QEMU was not a JSON object of a known QMP shape.
    #[error("malformed QMP message while waiting for {command}: {detail}")]
    Malformed {
        /// The QMP command (or `greeting` / `event`).
        command: String,
        /// What was wrong, with the start of the line.
        detail: String,
    },
    /// The peer sent a line longer than the limit (or one that never
    /// ends): refused without buffering the rest. The connection is
    /// unusable afterwards.
    #[error(
        "QMP message too long while waiting for {command}: over {limit} bytes (received {received} without a line end)"
    )]
    LineTooLong {
        /// The QMP command (or `greeting` / `event`).
        command: String,
        /// The limit ([`crate::client::MAX_LINE`]).
        limit: usize,
        /// How many bytes of the line had arrived when vusb stopped.
        received: usize,
    },
    /// The peer sent more events than vusb keeps queued while waiting for
    /// an answer ([`crate::client::MAX_QUEUED_EVENTS`] events or
    /// [`crate::client::MAX_LINE`] bytes of them).
    #[error(
        "too many QMP events while waiting for {command}: over {limit} events or {bytes} bytes queued"
    )]
    TooManyEvents {
        /// The QMP command (or `event`).
        command: String,
        /// The most events kept.
        limit: usize,
        /// The most bytes of events kept.
        bytes: usize,
    },
    /// QEMU answered the command with an error.
    #[error("QEMU refused {command}: {desc}")]
    Qemu {
        /// The QMP command.
        command: String,
        /// QMP error class (`GenericError`, `DeviceNotFound`, ...).
        class: String,
        /// QEMU's message, verbatim.
        desc: String,
    },
    /// QEMU answered, but the return value does not have the expected shape.
    #[error("unexpected return value of {command}: {detail}")]
    UnexpectedReturn {
        /// The QMP command.
        command: String,
        /// What was wrong.
        detail: String,
    },
}

impl Error {
    /// QEMU's error class, when QEMU refused a command.
    pub fn qemu_class(&self) -> Option<&str> {
        match self {
            Error::Qemu { class, .. } => Some(class),
            _ => None,
        }
    }

    /// QEMU's error message, when QEMU refused a command.
    pub fn qemu_desc(&self) -> Option<&str> {
        match self {
            Error::Qemu { desc, .. } => Some(desc),
            _ => None,
        }
    }

    /// QEMU answered `DeviceNotFound` (e.g. `device_del` of an unknown id).
    pub fn is_device_not_found(&self) -> bool {
        self.qemu_class() == Some("DeviceNotFound")
    }

    /// The connection is unusable afterwards: QEMU is gone or the stream
    /// broke (as opposed to QEMU refusing one command).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::Closed { .. }
                | Error::Send { .. }
                | Error::Receive { .. }
                | Error::LineTooLong { .. }
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
