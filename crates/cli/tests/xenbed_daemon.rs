//! Real Xen tier, daemon group: one boot of the real Xen test bed (Xen
//! 4.17 under QEMU TCG, Debian's 6.1 kernel as dom0 and guest; see
//! `docs/testing-real-xen.md`) with this build's `vusb daemon` running in
//! dom0 on the kernel's real netlink uevents. Real: hypervisor, dom0
//! kernel (uevents on the outer QEMU's `device_del`/`device_add`,
//! `usb-storage`, bind/unbind), xenstored and its `@releaseDomain`, xl,
//! QEMU's qusb backend, the guest's own `xen-hcd` and `usb-storage`.
//! The scenario is `xenbed/daemon.sh` (checks in
//! `xenbed/daemon_checks.rs`): the guest's console and dom0's sysfs,
//! xenstore and the daemon's audit lines, on one timeline.
//!
//! Skips without root/QEMU/image unless `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vusb_testsupport::xenbed::{self, Bed};

include!("xenbed/daemon_checks.rs");

#[test]
fn daemon_on_real_xen() {
    let Some(img) = xenbed::image_or_skip("xenbed_daemon") else {
        return;
    };
    let mut bed = Bed::new("xenbed_daemon", &img).unwrap();
    bed.vusb(Path::new(env!("CARGO_BIN_EXE_vusb"))).unwrap();
    bed.stick("stick1", "VUSB0001", "VUSB-MARKER-1", 1).unwrap();
    bed.plug_request("stick1", "VUSB0001", 1).unwrap();
    let script = [
        include_str!("xenbed/common.sh"),
        include_str!("xenbed/daemon.sh"),
    ]
    .join("\n");
    let out = bed.run(&script).unwrap();
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    for (name, value) in &out.metrics {
        eprintln!("metric: {name} {value}");
    }
    out.assert_passed(DAEMON_EXPECTED);
    // The guest's own console: its kernel enumerated the stick through
    // xen-hcd after the daemon attached it.
    let g = out.log("guest-gd.log");
    assert!(g.contains("DOMU UP: "), "guest gd never booted");
    assert!(
        g.contains("idVendor=46f4"),
        "gd's kernel never enumerated the stick"
    );
    out.cleanup();
}
