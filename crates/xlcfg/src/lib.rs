//! vusb-xlcfg: xl configuration files and the USB spec grammar, with no I/O.
//!
//! Parse → typed model, in layers:
//!
//! * [`lexer`] and [`parser`]: the whole xl.cfg syntax as libxlu accepts it
//!   (`tools/libs/util/libxlu_cfg_l.l`, `libxlu_cfg_y.y`), into a
//!   [`Config`] of settings whose getters behave like `xlu_cfg_get_*`;
//! * [`spec`]: the `usbctrl`/`usbdev` spec strings shared by config files
//!   and the `usbctrl-attach`/`usbdev-attach` arguments (reference
//!   §2.1–2.3), plus vusb's extension keys;
//! * [`usb`]: the USB settings of a guest as `xl create` reads them
//!   (`usbctrl=`, `usbdev=`, legacy HVM `usb=`, `usbversion=`,
//!   `usbdevice=`), see [`usb_config`];
//! * [`legacy`]: the legacy `usbdevice` strings (`tablet`, `host:B.A`, …);
//! * [`json`]: that model in libxl's JSON shape and back;
//! * [`cnum`]: C's `atoi`, `strtoul` and `strtol` as xl applies them.
//!
//! Nothing here does I/O or panics on input: callers pass text in.

pub mod cnum;
pub mod config;
pub mod error;
pub mod json;
pub mod legacy;
pub mod lexer;
pub mod parser;
pub mod spec;
pub mod usb;

pub use config::{Config, Op, Setting, Value, ValueKind, Warning};
pub use error::{Error, Result};
pub use lexer::Pos;
pub use parser::parse;
pub use spec::{
    CtrlKind, DevKind, IntfPatternSpec, PhysPortSpec, UsbCtrlSpec, UsbDevSpec, parse_number_arg,
    parse_usbctrl_args, parse_usbctrl_item, parse_usbdev_args, parse_usbdev_item,
};
pub use usb::{CtrlEntry, DevEntry, GuestType, LegacyUsb, UsbConfig, usb_config};

/// Parses a configuration text and reads its USB settings: what
/// `config-show` prints. Warnings are xl's (`LINE: warning: …`).
pub fn parse_usb(src: &str) -> Result<(UsbConfig, Vec<Warning>)> {
    usb_config(&parse(src)?)
}
