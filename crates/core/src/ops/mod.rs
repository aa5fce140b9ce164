//! One module per vusb command, named after it (`usbdev-attach` is
//! [`usbdev_attach`]). Each exposes the operation as a function over the
//! [`crate::HostPaths`] and a xenstore connection; the CLI only parses
//! arguments and prints.
//!
//! Shared pieces: [`common`] (environment, type resolution, defaults),
//! [`hostdev`] (host device selection), [`usbback`] (pv driver handover),
//! [`dm`] (the QMP side of devicemodel controllers).

pub mod common;
pub mod dm;
pub mod emulated;
pub mod hostdev;
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
