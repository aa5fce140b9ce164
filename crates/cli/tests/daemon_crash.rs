//! `vusb daemon` killed with SIGKILL in the middle of an attach, then
//! restarted: everything consistent. Runs on the fake host's **real C
//! xenstored** with a FUSE sysfs whose second bind to usbback blocks
//! (`vusb_testsupport::fusesys`), so the daemon is provably mid-attach —
//! one interface of the three-interface receiver `1-2` on usbback, the
//! port and record written — when it is killed. Skips without `/dev/fuse`
//! or the real xenstored outside CI.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig, require_or_skip};
use vusb_testsupport::fusesys::{self, FuseSys};
use vusb_xenstore::{TxId, XenstoreExt};

const VUSB: &str = env!("CARGO_BIN_EXE_vusb");

struct Bed {
    host: FakeHost,
    fuse: FuseSys,
}

impl Bed {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(VUSB);
        self.host.vusb_env(&mut c);
        c.env("VUSB_SYSFS_ROOT", self.fuse.root())
            .env("VUSB_BACKEND_TIMEOUT_MS", "5000")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "vusb {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn daemon(&self, log: &str) -> Child {
        let err = std::fs::File::create(self.host.root().join(log)).unwrap();
        self.cmd(&["daemon", "--uevents", "none"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.host.root().join(name)).unwrap_or_default()
    }

    fn status(&self) -> Option<serde_json::Value> {
        let text = vusb_core::daemon::control::request(&self.host.paths(), "status").ok()?;
        serde_json::from_str(&text).ok()
    }

    fn ports(&self) -> Vec<String> {
        let xs = self.host.client().unwrap();
        (1..=8)
            .filter_map(|p| {
                xs.read_opt(
                    TxId::NONE,
                    &format!("/local/domain/0/backend/vusb/1/0/port/{p}"),
                )
                .unwrap()
            })
            .filter(|v| !v.is_empty())
            .collect()
    }
}

#[test]
fn kill_9_mid_attach_then_restart_is_consistent() {
    if !fusesys::available() {
        return;
    }
    let Some(host) = require_or_skip(
        "kill_9_mid_attach_then_restart_is_consistent",
        FakeHost::start(&FakeHostConfig::default()),
    ) else {
        return;
    };
    let fuse = FuseSys::mount(&host.paths().sysfs_root).unwrap();
    let bed = Bed { host, fuse };
    bed.host.client().unwrap().introduce(1, 1, 7).unwrap();
    bed.ok(&["usbctrl-attach", "guest1", "type=pv", "ports=4"]);
    bed.ok(&["usb-rule-add", "guest1", "busid=1-2"]);

    bed.fuse.block_bind("usbback", 2);
    let mut first = bed.daemon("first.log");
    let reached = bed.fuse.wait_blocked(Duration::from_secs(60));
    first.kill().unwrap(); // SIGKILL, mid-attach
    // A request already handed to FUSE is waited out by the kernel even for
    // a killed process: let it finish (it fails, EINTR).
    bed.fuse.release();
    first.wait().unwrap();
    assert!(
        reached,
        "never reached the second bind: {}",
        bed.log("first.log")
    );
    assert_eq!(bed.fuse.driver_of("1-2:1.0").as_deref(), Some("usbback"));
    assert_ne!(bed.fuse.driver_of("1-2:1.1").as_deref(), Some("usbback"));

    let mut second = bed.daemon("second.log");
    let start = Instant::now();
    let attached = loop {
        if let Some(s) = bed.status()
            && s["rules"][0]["state"] == "attached"
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = bed.log("second.log");
    eprintln!("restarted daemon:\n{log}");
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(attached, "{log}");
    assert!(
        log.contains("previous daemon stopped during the attach of 1-2 to domid 1"),
        "{log}"
    );
    for i in 0..3 {
        assert_eq!(
            bed.fuse.driver_of(&format!("1-2:1.{i}")).as_deref(),
            Some("usbback"),
            "{log}"
        );
    }
    assert_eq!(bed.ports(), ["1-2"], "attached exactly once");
    let xs = bed.host.client().unwrap();
    assert_eq!(
        xs.directory_opt(TxId::NONE, "/vusb/assigned").unwrap(),
        ["1-2"]
    );
}
