//! One module per vusb command, named after it (`usbdev-attach` is
//! [`usbdev_attach`]). Each exposes the operation as a function over the
//! [`crate::HostPaths`] and a xenstore connection; the CLI only parses
//! arguments and prints.
//!
//! Shared pieces (no command module imports another; what two share is
//! here, once): [`attach`] (a host device to a Xen guest), [`common`] (environment, type resolution, defaults),
//! [`hostdev`] (host device selection), [`placement`] (port choice and
//! the claim transaction), [`handover`] (the executor of the journaled
//! hand-over, [`crate::journal`]), [`teardown`] (taking devices off a
//! controller), [`controller`] (creating and removing controllers),
//! [`emulated`] (QEMU's emulated devices), [`usbback`] (pv driver
//! hand-over), [`dm`] (the QMP side of devicemodel controllers).

pub mod attach;
pub mod common;
pub mod controller;
pub mod dm;
pub mod emulated;
pub mod handover;
pub mod hostdev;
pub mod placement;
pub mod teardown;
pub mod usbback;

pub mod config_apply;
pub mod config_dump;
pub mod usb_assignable_list;
pub mod usb_list;
pub mod usb_recover;
pub mod usb_release;
pub mod usbctrl_attach;
pub mod usbctrl_detach;
pub mod usbdev_attach;
pub mod usbdev_detach;

pub use common::{OpEnv, Timeouts};
