//! libxl's xenstore layout for USB controllers and devices (reference §4),
//! reproduced node for node and permission for permission, so guests'
//! usbfront, dom0's usbback, QEMU's qusb backend and `xl` itself see
//! exactly what libxl would have written. `docs/xenstore-layout.md` lists
//! every key.
//!
//! - [`model`]: the resolved controller model (`UsbCtrlType`, `Controller`)
//!   and every path derived from it.
//! - [`write`]: creating a controller's nodes in one transaction, and the
//!   auto devid (`nextid`).
//! - [`read`]: reading a controller back, only from the trusted `/libxl`
//!   directory (XSA-178: never from what the guest can write).
//! - [`remove`]: libxl's removal (online=0, state=5, wait for 6, delete the
//!   three directories, prune emptied parents).
//! - [`wait`]: waiting for a backend state through a watch, with a timeout.

pub mod model;
pub mod read;
pub mod remove;
pub mod wait;
pub mod write;

pub use model::{Controller, UsbCtrlType};
