//! Host USB devices for vusb: discovery from sysfs, the identities a user
//! can name a device by, whether a device may leave the host (with the
//! reason when not), and the bind/unbind primitives that move interfaces
//! between drivers.
//!
//! This crate knows nothing of xenstore or passthrough policy. Every
//! function takes the sysfs root (`/sys`, or a test tree) as a `&Path`.
//!
//! Module map:
//! - [`parse`]: every sysfs value format, and xl's `strtoul` number grammar;
//! - [`sysfs`]: [`sysfs::SysfsPath`], reads that name the file on error;
//! - [`device`]: the typed model ([`BusId`], [`UsbDevice`], [`Interface`]);
//! - [`discover`]: the tolerant walk of `bus/usb/devices`;
//! - [`physport`]: the physical-port identity (USB2/USB3 halves as one);
//! - [`endpoints`]: endpoint descriptors (isochronous transfers);
//! - [`filter`]: interface filters (usbguard's `with-interface`);
//! - [`lookup`]: [`Selector`] and [`lookup::find`];
//! - [`usage`]: block devices the host uses (mounts, swap, holders);
//! - [`assignable`]: [`Refusal`] and [`assignable::check`];
//! - [`bind`]: current driver, bind, unbind;
//! - [`udev`]: whether udevd has announced a device (QEMU's libusb knows
//!   only the devices udevd announced).

pub mod assignable;
pub mod bind;
pub mod device;
pub mod discover;
pub mod endpoints;
mod error;
pub mod filter;
pub mod lookup;
pub mod parse;
pub mod physport;
pub mod sysfs;
pub mod udev;
pub mod usage;

pub use assignable::Refusal;
pub use device::{BusId, Interface, PortLink, UsbDevice};
pub use discover::discover;
pub use error::{Error, Result};
pub use filter::{InterfaceFilter, InterfacePattern};
pub use lookup::Selector;
