//! Every refusal says why, on stderr, without `-v`: xl's message and exit
//! status unchanged, then `vusb:` lines with the reason and the remedy.
//! End to end with the built binary: xenstore and guests of the simulated
//! host (`vusb_sim`), host devices from a fixture sysfs tree
//! (`vusb_testsupport::sysfs::typical_host`: a hub 1-2 with a mounted
//! flash drive 1-2.1 below it) via `--sysfs-root` and `VUSB_PROC_ROOT`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use support::{Sim, start, stderr, stdout};
use vusb_testsupport::sysfs::{DeviceSpec, IntfSpec, SysfsTree, typical_host};

struct Host {
    sim: Sim,
    tree: SysfsTree,
}

fn host() -> Host {
    let sim = start();
    let tree = typical_host().unwrap();
    for (busid, devnum, serial) in [("1-3", 5, "A1"), ("1-4", 6, "B2")] {
        tree.device(
            busid,
            &DeviceSpec::new(devnum, 0x1234, 0x0001)
                .strings("Acme", "Twin", Some(serial))
                .intf(IntfSpec::new(3, Some("usbhid"))),
        )
        .unwrap();
    }
    sim.ok(&["usbctrl-attach", "guest2", "type=qusb", "ports=2"]);
    Host { sim, tree }
}

impl Host {
    fn attach(&self, args: &[&str]) -> Output {
        let root = self.tree.root();
        let mut full = vec!["--sysfs-root", root.to_str().unwrap(), "usbdev-attach"];
        full.extend_from_slice(args);
        self.sim
            .cmd(&full)
            .env("VUSB_PROC_ROOT", self.tree.proc_root())
            .output()
            .unwrap()
    }

    /// xl's two lines, then the `vusb:` lines; exit 1, nothing on stdout,
    /// nothing attached.
    fn refused(&self, args: &[&str], xl: &str) -> Vec<String> {
        let o = self.attach(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(stdout(&o), "");
        let lines: Vec<String> = err.lines().map(str::to_owned).collect();
        assert_eq!(lines[0], xl, "{err}");
        assert_eq!(lines[1], "libxl_device_usbdev_add failed.", "{err}");
        assert!(lines.len() > 2, "no explanation: {err}");
        for l in &lines[2..] {
            assert!(l.starts_with("vusb: "), "{err}");
            assert!(!l.contains("vusb_"), "module path in {err}");
        }
        assert_eq!(self.sim.port(2, "qusb", 1), None);
        lines[2..].to_vec()
    }
}

const NA: &str = "USB device is not assignable.";

#[test]
fn a_mounted_disk_names_the_mount_point_and_force() {
    let h = host();
    let why = h.refused(&["guest2", "busid=1-2.1"], NA);
    assert!(why[0].contains("1-2.1 is in use by the host"), "{why:?}");
    assert!(
        why[0].contains("/dev/sdb1 is mounted on /media/user/CRUZER"),
        "{why:?}"
    );
    assert!(why[0].contains("--force"), "{why:?}");
}

#[test]
fn a_hub_is_named_a_hub_and_force_does_not_help() {
    let h = host();
    let why = h.refused(&["guest2", "busid=1-2", "--force"], NA);
    assert!(why[0].contains("1-2 is a USB hub"), "{why:?}");
    assert!(why[0].contains("the host is using 1-2.1"), "{why:?}");
    assert!(why[0].contains("never passed through"), "{why:?}");
}

#[test]
fn an_unknown_device_lists_the_closest() {
    let h = host();
    let why = h.refused(&["guest2", "vendor=1234", "product=0002"], NA);
    assert_eq!(
        why[0],
        "vusb: no host USB device with vendor:product 1234:0002"
    );
    assert!(why[1].starts_with("vusb: closest: busid=1-3 "), "{why:?}");
    assert!(why[1].contains("1234:0001 Acme Twin"), "{why:?}");
    assert!(why[1].contains("usb-assignable-list"), "{why:?}");
}

#[test]
fn several_matches_are_listed_with_what_tells_them_apart() {
    let h = host();
    let why = h.refused(&["guest2", "vendor=1234", "product=0001"], NA);
    assert!(why[0].contains("matches 2 devices"), "{why:?}");
    assert!(why[0].contains("serial=A1 or busid=1-3"), "{why:?}");
    assert!(why[0].contains("serial=B2 or busid=1-4"), "{why:?}");
    // And the serial does tell them apart.
    let o = h.attach(&["guest2", "vendor=1234", "product=0001", "serial=B2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(h.sim.port(2, "qusb", 1).as_deref(), Some("1-4"));
}

#[test]
fn incomplete_and_conflicting_selectors_are_refused() {
    let h = host();
    let why = h.refused(&["guest2", "vendor=1234"], NA);
    assert!(why[0].contains("vendor= needs product= too"), "{why:?}");
    let why = h.refused(&["guest2", "serial=A1"], NA);
    assert!(
        why[0].contains("serial= needs vendor= and product="),
        "{why:?}"
    );
    let why = h.refused(&["guest2", "busid=1-4", "hostbus=1", "hostaddr=5"], NA);
    assert!(
        why[0].contains("named in 2 ways at once (busid=, hostbus=/hostaddr=)"),
        "{why:?}"
    );
}

#[test]
fn assigned_elsewhere_names_the_domain() {
    let h = host();
    assert!(h.attach(&["guest2", "busid=1-3"]).status.success());
    h.sim.ok(&["usbctrl-attach", "guest3"]);
    let o = h.attach(&["guest3", "busid=1-3"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(
            "USB device already attached to a domain\nlibxl_device_usbdev_add failed.\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("vusb: 1-3 is attached to domain 2 (guest2); detach it there first"),
        "{err}"
    );
}

#[test]
fn no_such_controller_is_said_so() {
    let h = host();
    let why = h.refused(
        &["guest2", "busid=1-3", "controller=5"],
        "xenstore read failed: `/libxl/2/device/vusb/5'",
    );
    assert!(
        why[0].contains("domain 2 has no USB controller 5"),
        "{why:?}"
    );
    let o = h.sim.run(&["usbctrl-detach", "guest2", "7"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Unknown device 7.\nvusb: domain 2 has no USB controller 7; `vusb usb-list 2` shows its controllers, `vusb usbctrl-attach 2` adds one\n"
    );
}

#[test]
fn no_xenstore_suggests_sim_and_qmp() {
    let dir = tempfile::tempdir().unwrap();
    let o = support::bare(&["usb-list", "guest1"])
        .env("XENSTORED_PATH", dir.path().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot reach xenstore"), "{err}");
    assert!(
        err.contains("not a Xen dom0? try `vusb sim start DIR`"),
        "{err}"
    );
    assert!(err.contains("--qmp PATH"), "{err}");
    assert!(!err.contains("/libxl/"), "{err}");
}

#[test]
fn config_apply_explains_the_entry_that_failed() {
    let h = host();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g2.cfg");
    std::fs::write(&cfg, "usbdev = ['hostbus=1,hostaddr=9']\n").unwrap();
    let root = h.tree.root();
    let o = h
        .sim
        .cmd(&[
            "--sysfs-root",
            root.to_str().unwrap(),
            "config-apply",
            "guest2",
            cfg.to_str().unwrap(),
        ])
        .env("VUSB_PROC_ROOT", h.tree.proc_root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("USB device is not assignable."), "{err}");
    assert!(
        err.contains("\nvusb: no host USB device with hostbus 1 hostaddr 9\nvusb: closest: "),
        "{err}"
    );
}
