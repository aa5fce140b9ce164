//! vusb-sim: the simulated Xen host behind `vusb sim`, and the pieces the
//! test support's fake host (`vusb-testsupport`) reuses.
//!
//! It is its own crate so that the passthrough library (`vusb-core`) holds
//! no simulator: the CLI ships it for `vusb sim`, the tests use it through
//! `vusb-testsupport` or directly. It depends on `vusb-core` only for
//! [`vusb_core::HostPaths`] (where to point vusb) and QEMU's emulated
//! device drivers ([`vusb_core::devicemodel::EmulatedKind`]).
//!
//! **Everything here is a simulation** for trying vusb and testing it on a
//! machine without Xen: no hypervisor, no guest, no USB traffic. What is
//! simulated is what a toolstack observes:
//!
//! - [`xenbus`]: dom0's usbback / QEMU qusb backend and the guest's usbfront
//!   following the xenbus state protocol on xenstore, with failure modes.
//! - [`layout`]: dom0 and guests laid out in xenstore as libxl leaves them,
//!   and libxl's stored JSON configuration per guest.
//! - [`fixture`]: a sysfs tree of recorded USB devices (plain files).
//! - [`bindemu`]: the kernel's part of `drivers/*/bind` and `unbind` on that
//!   tree.
//! - [`qmp`]: a QEMU 7.2-like QMP server, the device model of HVM guests.
//! - [`hotplug`]: unplug, re-plug and bus renumbering on that tree, and
//!   the uevents announcing them to `vusb daemon`.
//! - [`host`]: all of it together behind vusb's own in-memory xenstore
//!   server on a Unix socket, with the environment to point vusb at it.
//!
//! libxl has no equivalent; the layout matches the xl-peer fake host on
//! which the real `xl` 4.17 was recorded (`docs/simulator.md`).

pub mod bindemu;
pub mod fixture;
pub mod host;
pub mod hotplug;
pub mod layout;
pub mod qmp;
pub mod xenbus;

use std::path::PathBuf;

/// Errors of the simulated host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A xenstore request made while laying out or driving the host failed.
    #[error("xenstore request of the simulated host")]
    Xenstore(#[from] vusb_xenstore::Error),
    /// Writing a file of the host's tree (sysfs fixture, JSON, pid file).
    #[error("writing {path}")]
    WriteFixture {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving the in-memory xenstore on its socket.
    #[error("serving xenstore on {path}")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Starting one of the simulator's threads.
    #[error("starting a simulator thread")]
    SpawnThread(#[source] std::io::Error),
}
