//! libxl's xenstore layout for USB controllers and devices (reference §4),
//! reproduced node for node so guests' usbfront, dom0's usbback, QEMU's
//! qusb backend and `xl` itself see exactly what libxl would have written.
//!
//! - [`model`]: the resolved controller model (`UsbCtrlType`, `UsbCtrl`).

pub mod model;

pub use model::UsbCtrlType;
