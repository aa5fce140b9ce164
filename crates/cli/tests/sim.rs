//! `vusb sim` end to end, with the built binary: the session, the
//! background host (`sim start` / `sim stop`) driven by other vusb
//! commands, and the built-in host's xenstore compared with the fake host
//! on the real xenstored (which reproduces the recorded xl host).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use vusb_sim::host::{SimConfig, SimHost};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};

fn vusb(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vusb"));
    c.args(args);
    for v in [
        "XENSTORED_PATH",
        "VUSB_SYSFS_ROOT",
        "VUSB_PROC_ROOT",
        "VUSB_STATE_DIR",
        "VUSB_QMP_DIR",
        "VUSB_XEN_LIB_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn session_attaches_lists_and_detaches() {
    let o = vusb(&["sim"]).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // The commands as a user types them.
    assert!(
        t.contains("$ vusb usbctrl-attach guest1 type=pv version=2 ports=4\n"),
        "{t}"
    );
    // The simulated drivers answered the controller.
    assert!(
        t.contains("[xenbus] /local/domain/0/backend/vusb/1/0 backend 1 -> 2"),
        "{t}"
    );
    assert!(
        t.contains("[xenbus] /local/domain/0/backend/vusb/1/0 backend 2 -> 4"),
        "{t}"
    );
    assert!(
        t.contains("[xenbus] /local/domain/0/backend/qusb/2/0 backend 5 -> 6"),
        "{t}"
    );
    // The receiver's interfaces went to usbback and came back.
    for i in 0..3 {
        assert!(
            t.contains(&format!("[sysfs] bind usbback 1-2:1.{i}\n")),
            "{t}"
        );
        assert!(
            t.contains(&format!("[sysfs] bind usbhid 1-2:1.{i}\n")),
            "{t}"
        );
    }
    // usb-list shows both devices in xl's format.
    assert!(
        t.contains("0      pv           0   4     2       4    \n  Port 1: Bus 001 Device 003\n"),
        "{t}"
    );
    assert!(
        t.contains("0      qusb         0   4     2       2    \n  Port 1: Bus 001 Device 002\n"),
        "{t}"
    );
    // guest3's device model got the controller and the device, and gave them back.
    let qmp_add = r#"[qmp] domain 3 {"arguments":{"driver":"usb-ehci","id":"xenusb-0"},"execute":"device_add"}"#;
    let qmp_del = r#"[qmp] domain 3 {"arguments":{"id":"xenusb-1-4"},"execute":"device_del"}"#;
    assert!(t.contains(qmp_add) && t.contains(qmp_del), "{t}");
    assert!(
        t.contains("0      devicemodel  0   0     2       6    \n  Port 1: Bus 001 Device 004\n"),
        "{t}"
    );
    // A device assigned elsewhere is refused, and the session goes on.
    let refused = "$ vusb usbdev-attach guest3 hostbus=1 hostaddr=3\nUSB device already attached to a domain\n";
    assert!(t.contains(refused), "{t}");
    assert!(
        t.ends_with("Simulation finished; the simulated host is gone.\n"),
        "{t}"
    );
}

#[test]
fn background_host_serves_other_commands_until_stopped() {
    let dir = tempfile::Builder::new()
        .prefix("vsim")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path().to_str().unwrap();
    let o = vusb(&["sim", "start", d]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let env_text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        env_text.contains(&format!("export XENSTORED_PATH={d}/xenstored.sock\n")),
        "{env_text}"
    );
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(env.len(), 6, "{env_text}");
    let run = |args: &[&str]| {
        vusb(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    };

    // A second start in the same directory is refused.
    let again = vusb(&["sim", "start", d]).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    let o = run(&["usbctrl-attach", "guest1", "type=pv", "ports=2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["usbdev-attach", "1", "hostbus=1", "hostaddr=2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["usb-list", "1"]);
    assert!(
        text(&o).contains("Port 1: Bus 001 Device 002"),
        "{}",
        text(&o)
    );
    let link = std::fs::read_link(Path::new(d).join("sys/bus/usb/devices/1-1:1.0/driver")).unwrap();
    assert_eq!(link, Path::new("../../drivers/usbback"));

    let o = vusb(&["sim", "stop", d]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!Path::new(d).join("sim.pid").exists());
    assert!(!Path::new(d).join("xenstored.sock").exists());
    let o = vusb(&["sim", "stop", d]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn sim_usage_errors_exit_2() {
    let o = vusb(&["sim", "bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

fn dump(socket: &Path) -> String {
    let o = Command::new("xenstore-ls")
        .arg("-fp")
        .env("XENSTORED_PATH", socket)
        .output()
        .expect("xenstore-ls (xenstore-utils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.contains("/image/device-model-pid = "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The built-in host (memory store, vusb's own dom0 layout) holds exactly
/// the store of the fake host on the real xenstored with real
/// `xen-init-dom0`, which reproduces the recorded xl host.
#[test]
fn built_in_host_store_equals_the_real_daemon_host() {
    let sim_config = SimConfig::default();
    let config = FakeHostConfig {
        domains: sim_config.domains.clone(),
        usb_devices: sim_config.usb_devices,
        ..FakeHostConfig::default()
    };
    let Some(real) = require_or_skip("sim store comparison", FakeHost::start(&config)) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("vsim")
        .tempdir_in("/tmp")
        .unwrap();
    let sim = SimHost::start(dir.path(), &sim_config).unwrap();
    assert_eq!(dump(sim.socket()), dump(real.socket()));
    let json = |root: &Path| {
        let mut v: Vec<(String, String)> = std::fs::read_dir(root.join("var/lib/xen"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let t = std::fs::read_to_string(e.path())
                    .unwrap()
                    .replace(root.to_str().unwrap(), "ROOT");
                (e.file_name().to_string_lossy().into_owned(), t)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(json(sim.root()), json(real.root()));
}

/// The simulated drivers' failure modes as vusb meets them on the real
/// xenstored: a usbback that never reaches InitWait makes
/// `usbctrl-attach` fail after its timeout and leave the store as it was
/// (libxl leaves every node behind, bug C2); a frontend that never
/// connects does not fail the attach (libxl waits for InitWait only); a
/// backend that never closes does not keep `usbctrl-detach` from removing
/// the controller.
#[test]
fn driver_failure_modes_as_vusb_sees_them() {
    use vusb_sim::xenbus::{DriverConfig, Failure};
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_vusb"));
    let host = |failure| {
        let cfg = FakeHostConfig {
            drivers: Some(DriverConfig {
                failure: Some(failure),
                ..DriverConfig::default()
            }),
            ..FakeHostConfig::default()
        };
        require_or_skip("failure modes", FakeHost::start(&cfg))
    };
    let run = |h: &FakeHost, args: &[&str]| {
        let mut c = h.vusb_command(&bin, args).unwrap();
        c.env("VUSB_BACKEND_TIMEOUT_MS", "700");
        let t = std::time::Instant::now();
        let o = c.output().unwrap();
        (o, t.elapsed())
    };

    let Some(h) = host(Failure::BackendNeverInitWait) else {
        return;
    };
    let before = h.dump().unwrap();
    let (o, took) = run(&h, &["usbctrl-attach", "1", "type=pv"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    h.settle();
    assert_eq!(
        h.dump().unwrap(),
        before,
        "a failed attach left nodes behind"
    );

    let Some(h) = host(Failure::FrontendNeverConnects) else {
        return;
    };
    let (o, _) = run(&h, &["usbctrl-attach", "1", "type=pv"]);
    assert!(o.status.success(), "{}", text(&o));
    h.settle();
    let dump = h.dump().unwrap();
    assert!(
        dump.contains("/local/domain/0/backend/vusb/1/0/state = \"2\""),
        "{dump}"
    );

    let Some(h) = host(Failure::BackendNeverCloses) else {
        return;
    };
    let (o, _) = run(&h, &["usbctrl-attach", "1", "type=pv"]);
    assert!(o.status.success(), "{}", text(&o));
    h.settle();
    let (o, took) = run(&h, &["usbctrl-detach", "1", "0"]);
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    eprintln!(
        "usbctrl-detach with a backend that never closes: {}",
        text(&o)
    );
    h.settle();
    let dump = h.dump().unwrap();
    assert!(!dump.contains("/libxl/1/device/vusb/0"), "{dump}");
}
