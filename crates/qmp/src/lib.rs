//! A small, blocking client for the QEMU Machine Protocol (QMP), written
//! for USB hot-plug: what vusb needs and nothing else.
//!
//! * [`Qmp`] is generic over a [`Stream`] (a Unix socket in production, a
//!   socket pair in tests): greeting, `qmp_capabilities`, commands with
//!   numeric ids, events interleaved with replies queued for later, one
//!   deadline per command bounding its total time, lines and queued events
//!   bounded in size ([`MAX_LINE`], [`MAX_QUEUED_EVENTS`]).
//! * Everything that can go wrong — a missing socket, a peer that is not
//!   QEMU, EOF because QEMU died, a command that times out, QEMU refusing
//!   a command — is an [`Error`] variant; nothing panics.
//! * [`commands`] adds a typed layer for `device_add`, `device_del`,
//!   `qom-list`, `qom-get`, `query-pci`, `x-query-usb` and `DEVICE_DELETED`.
//!
//! Why not the `qapi` crate: its synchronous handshake panics on EOF, its
//! schema is QEMU 9.1's (7.2 differs), and it has no blocking wait for one
//! event. QMP is one JSON object per line; the transport is ~250 lines.
//! Wire format follows libxl's (`execute`, `id`, `arguments`; lines end
//! with `\r\n`).

pub mod client;
pub mod commands;
pub mod error;
pub mod message;

pub use client::{DEFAULT_TIMEOUT, MAX_LINE, MAX_QUEUED_EVENTS, Qmp, Stream, connect_unix};
pub use commands::{DeviceAdd, PciFunction, Peripheral};
pub use error::{Error, Result};
pub use message::{Event, Greeting, Message};
