//! vusb-xlcfg: xl configuration files and the USB spec grammar, with no I/O.
//!
//! * [`spec`]: the `usbctrl`/`usbdev` spec strings shared by config files
//!   and the `usbctrl-attach`/`usbdev-attach` arguments, read as xl reads
//!   them (reference §2.1–2.3), plus vusb's extension keys.
//! * [`cnum`]: C's `atoi` and base-0 `strtoul`, which xl applies to spec
//!   values, reproduced exactly.
//! * [`error`]: the crate's error enum.

pub mod cnum;
pub mod error;
pub mod spec;

pub use error::{Error, Result};
pub use spec::{
    CtrlKind, DevKind, UsbCtrlSpec, UsbDevSpec, parse_usbctrl_args, parse_usbctrl_item,
    parse_usbdev_args, parse_usbdev_item,
};
