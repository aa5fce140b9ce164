//! Simulated usbback / usbfront for tests: the xenbus state machine of
//! [`vusb_sim::xenbus`] (it lives in the `vusb-sim` crate because the
//! `vusb sim` command ships it), re-exported here for tests.
//!
//! Start it on its own dom0 connection (a real-xenstored client or a
//! memory-store connection):
//! `let drivers = Drivers::spawn(conn, DriverConfig::default())?;` — it
//! stops when dropped. [`DriverConfig::failure`] selects a misbehaviour
//! ([`Failure`]): backend never reaches 2, frontend never connects,
//! backend never closes.

pub use vusb_sim::xenbus::{BACKEND_ROOTS, DriverConfig, Drivers, Failure};
