//! The fake QEMU QMP server of simulated HVM guests: it lives in
//! [`vusb_sim::qmp`] (the `vusb sim` command ships it) and is
//! re-exported here for the fake host and tests.

pub use vusb_sim::qmp::{FakeQmp, canonical};
