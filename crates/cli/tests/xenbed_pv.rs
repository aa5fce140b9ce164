//! Real Xen tier, PV group: one boot of the real Xen test bed (Xen 4.17
//! under QEMU TCG, Debian's 6.1 kernel as dom0 and guests; see
//! `docs/testing-real-xen.md`) with this build's `vusb` in dom0. Real:
//! hypervisor, dom0 kernel (sysfs, usb-storage, bind/unbind), xenstored,
//! xl, QEMU's qusb backend, the guests' own `xen-hcd` and `usb-storage`.
//! The scenario is `xenbed/pv.sh` (helpers: `xenbed/common.sh` and the
//! harness's `lib.sh`); every check looks at the guest's console (what its
//! kernel enumerated and read) or dom0's sysfs and disks.
//!
//! Skips without root/QEMU/image unless `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use vusb_testsupport::xenbed::{self, Bed};

/// Every check pv.sh reports (a missing one fails the test).
const EXPECTED: &[&str] = &[
    "g1-created",
    "g1-up",
    "g1-no-device-model",
    "stick1-on-host",
    "no-usbback-in-dom0",
    "pv-refused",
    "pv-refused-within-1s",
    "pv-message-names-usbback",
    "pv-refusal-changes-nothing",
    "nocontroller-attach",
    "nocontroller-host-released",
    "nocontroller-guest-reads",
    "nocontroller-guest-writes",
    "nocontroller-detach",
    "nocontroller-guest-lost",
    "nocontroller-host-driver-back",
    "nocontroller-data-on-host",
    "backend-started",
    "backend-running",
    "backend-qmp-socket",
    "auto-type-is-qusb",
    "serial-guest-reads",
    "serial-data-on-host",
    "hostbus-guest-reads",
    "hostbus-data-on-host",
    "busid-guest-reads",
    "busid-data-on-host",
    "portpath-guest-reads",
    "portpath-data-on-host",
    "ctrl-attach",
    "ctrl-auto-is-qusb-connected",
    "ctrl-guest-sees",
    "ctrl-same-backend",
    "ctrl-detach",
    "ctrl-guest-lost",
    "ctrl-nodes-gone",
    "ctrl-backend-kept",
    "stick2-on-host",
    "interop-vusb-guest-reads",
    "usb-list-identical-vusb-attached",
    "xl-detach-guest-lost",
    "xl-detach-host-back",
    "interop-xl-guest-reads",
    "usb-list-identical-xl-attached",
    "vusb-detach-guest-lost",
    "vusb-detach-host-back",
    "interop-final-host-back",
    "xl-detaches-vusbs",
    "vusb-detaches-xls",
    "interop-reattach-guest-reads",
    "unplug-guest-reads",
    "unplug-guest-lost",
    "unplug-detach-by-identity",
    "unplug-port-free",
    "unplug-record-gone",
    "replug-host-driver",
    "replug-stays-on-host",
    "kill9-0.05-consistent",
    "kill9-0.2-consistent",
    "kill9-0.6-consistent",
    "kill9-0.6-host-back",
    "backend-stopped",
    "backend-nodes-gone",
    "backend-sockets-gone",
    "ctrl-attach-restarted-running",
    "ctrl-attach-guest-connects",
    "backend-stopped-again",
    "g2-usbfront-up",
    "backend-cmdline-as-libxl",
    "backend-nodes-as-libxl",
    "xl-qemu-kept",
    "destroy-guest-reads",
    "destroy-host-back",
    "destroy-reattach-guest-reads",
    "destroy-final-host-back",
];

#[test]
fn pv_guests_qusb_on_real_xen() {
    let Some(img) = xenbed::image_or_skip("xenbed_pv") else {
        return;
    };
    let mut bed = Bed::new("xenbed_pv", &img).unwrap();
    bed.vusb(Path::new(env!("CARGO_BIN_EXE_vusb"))).unwrap();
    bed.stick("stick1", "VUSB0001", "VUSB-MARKER-1", 1).unwrap();
    bed.disk("stick2", "VUSB-MARKER-2").unwrap();
    bed.plug_request("stick1", "VUSB0001", 1).unwrap();
    bed.plug_request("stick2", "VUSB0002", 2).unwrap();
    let script = [
        include_str!("xenbed/common.sh"),
        include_str!("xenbed/pv.sh"),
    ]
    .join("\n");
    let out = bed.run(&script).unwrap();
    out.assert_passed(EXPECTED);
    // Read the guest's own console here too: its kernel enumerated the
    // stick through xen-hcd and wrote to it.
    let g1 = out.log("guest-g1.log");
    assert!(g1.contains("DOMU UP: "), "guest g1 never booted");
    assert!(
        g1.contains("DOMU WROTE: VUSB-MARKER-1"),
        "g1 never wrote the stick"
    );
    assert!(
        g1.contains("xen_hcd"),
        "g1's kernel log never mentions xen_hcd"
    );
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    out.cleanup();
}
