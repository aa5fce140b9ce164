//! vusb's core library: USB passthrough operations for Xen guests (the
//! `pv`, `qusb` and `devicemodel` controller types of libxl) and for plain
//! QEMU/KVM VMs reached through their QMP socket.
//!
//! The CLI (`vusb-cli`) is a thin layer over [`ops`]: one module per
//! command, named after it. See `ARCHITECTURE.md` for the code map and the
//! life of one `usbdev-attach`.

pub mod dryrun;
pub mod env;
pub mod error;
mod flock;
pub mod lock;
pub mod progress;
pub mod small_file;

pub mod assign;
pub mod domain;
pub mod emulated;
pub mod journal;
pub mod layout;
pub mod libxl_json;

pub mod driver_memory;
pub mod rebind;

pub mod devicemodel;
pub mod qemu_vm;

pub mod bookkeeping;
pub mod persist;
pub mod qusb_backend;

pub mod daemon;
pub mod rules;
mod statefile;

pub mod ops;

pub use env::HostPaths;
pub use error::{Error, Result};
/// The host device name used throughout the library (from `vusb-host`).
pub use vusb_host::BusId;
