//! Test support for vusb: the real C xenstored run without Xen (one
//! private daemon per test), a guest-domain connection through its ring
//! page, sysfs trees and a kernel-like sysfs over FUSE, simulated usbback /
//! usbfront drivers that follow the xenbus state protocol, the real `xl`
//! run on a fake host, and a QEMU launcher.
//!
//! None of this is compiled into the `vusb` binary's release paths except
//! what the built-in simulated host (`vusb sim`) needs.

pub mod fakehost;
pub mod fusesys;
pub mod invariants;
pub mod qemu;
pub mod ring;
pub mod strace;
pub mod sysfs;
pub mod xenbed;
pub mod xenbus_sim;
pub mod xenstored;
pub mod xlpeer;
