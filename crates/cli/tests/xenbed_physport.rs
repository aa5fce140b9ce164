//! Real Xen tier, physical ports (issue 12): one dom0-only boot of the
//! real Xen test bed (Xen 4.17 under QEMU TCG, Debian's 6.1 kernel as
//! dom0; see `docs/testing-real-xen.md`) with this build's `vusb` in dom0.
//! Real: dom0's kernel enumerating the outer QEMU's xHCI (its USB2 and
//! USB3 root hubs, the kernel's own `port`/`peer` links), QEMU's
//! `usb-tablet` (high speed) and `usb-storage` (SuperSpeed on QEMU 7.2's
//! xHCI), hot-unplug and plug over the outer QEMU's QMP, and a real
//! re-probe of the controllers that renumbers their buses.
//!
//! The scenario is `xenbed/physport.sh`: outer port 1 through the USB2
//! half (tablet, `1-1`) and the USB3 half (stick, `2-1`) must give one
//! `physical_port` in `vusb usb-assignable-list --json`, and so must the
//! stick after both xHCIs are unbound and bound again in the other order
//! (its busid becomes `4-1`). The second xHCI has 8 SuperSpeed ports but
//! 4 USB2 ports; a stick on its port 5 has no USB2 half (no `peer`
//! link): its physical port must be marked `s5`.
//!
//! Skips without root/QEMU/image unless `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use vusb_testsupport::xenbed::{self, Bed};

const EXPECTED: &[&str] = &[
    "tablet-present",
    "hs-speed",
    "hs-has-peer",
    "hs-physport-anchored",
    "tablet-unplugged",
    "stick-plugged",
    "stick-present",
    "ss-speed",
    "halves-differ-by-busid",
    "halves-one-physport",
    "text-shows-physport",
    "two-controllers",
    "stick-back",
    "renumbered-busid-differs",
    "renumbered-same-physport",
    "ss-only-present",
    "ss-only-has-no-peer",
    "ss-only-marked",
];

#[test]
fn one_connector_one_physical_port_on_real_xen() {
    let Some(img) = xenbed::image_or_skip("xenbed_physport") else {
        return;
    };
    let mut bed = Bed::new("xenbed_physport", &img).unwrap();
    bed.vusb(Path::new(env!("CARGO_BIN_EXE_vusb"))).unwrap();
    bed.qemu_args([
        "-device",
        "qemu-xhci,id=xhci2,p2=4,p3=8",
        "-device",
        "usb-tablet,bus=xhci.0,port=1,id=first",
        "-device",
        "usb-storage,bus=xhci2.0,port=5,drive=stick2,id=stick2,serial=SSONLY01",
    ]);
    bed.disk("stick1", "PHYSPORT-MARKER").unwrap();
    bed.disk("stick2", "SSONLY-MARKER").unwrap();
    let out = bed.run(include_str!("xenbed/physport.sh")).unwrap();
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    out.assert_passed(EXPECTED);
    // dom0's own view of the links, as recorded by the scenario: the
    // SuperSpeed stick's port has a peer on the USB2 root hub.
    let ss = out.log("links-ss.txt");
    assert!(
        ss.lines()
            .any(|l| l.starts_with("2-1 ") && l.contains("peer=../../../usb1/")),
        "{ss}"
    );
    out.cleanup();
}
