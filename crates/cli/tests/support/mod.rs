//! Shared helpers of the CLI's end-to-end tests: the built `vusb` run
//! against the simulated host (`vusb_sim::host`, the host behind
//! `vusb sim start DIR`: an in-memory xenstore served over a socket, the
//! simulated usbback/usbfront, a sysfs tree with bind/unbind emulation and
//! fake QMP servers for HVM guests).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vusb_sim::host::{SimConfig, SimHost};

/// A running simulated host in a temporary directory.
pub struct Sim {
    pub host: SimHost,
    _dir: tempfile::TempDir,
}

/// Start a simulated host.
pub fn start() -> Sim {
    start_with(&SimConfig::default())
}

/// Start a simulated host whose guests are the PV domains `domids`.
pub fn pv_guests(domids: &[u32]) -> Sim {
    use vusb_sim::layout::{DomainKind, GuestSpec};
    start_with(&SimConfig {
        domains: domids
            .iter()
            .map(|&d| GuestSpec::new(d, DomainKind::Pv))
            .collect(),
        ..SimConfig::default()
    })
}

/// Start a simulated host configured so.
pub fn start_with(config: &SimConfig) -> Sim {
    let dir = tempfile::Builder::new()
        .prefix("vcli")
        .tempdir_in("/tmp")
        .unwrap();
    let host = SimHost::start(dir.path(), config).unwrap();
    Sim { host, _dir: dir }
}

/// `vusb` with no host location from the caller's environment.
pub fn bare(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vusb"));
    c.args(args);
    for v in [
        "XENSTORED_PATH",
        "XENSTORED_RUNDIR",
        "VUSB_SYSFS_ROOT",
        "VUSB_PROC_ROOT",
        "VUSB_STATE_DIR",
        "VUSB_QMP_DIR",
        "VUSB_XEN_LIB_DIR",
        "VUSB_LOG",
    ] {
        c.env_remove(v);
    }
    c
}

/// stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Sim {
    /// `vusb` on this host. A backend that never answers fails in 5 s
    /// instead of libxl's 10 s (a test may set its own value).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bare(args);
        c.envs(self.host.env())
            .env("VUSB_BACKEND_TIMEOUT_MS", "5000");
        c
    }

    /// The host's directory, for files a test writes.
    pub fn root(&self) -> &Path {
        self.host.root()
    }

    /// Writes `text` to `name` in the host's directory; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.root().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// A client of the host's xenstore.
    pub fn xs(&self) -> vusb_xenstore::client::Client {
        vusb_xenstore::client::Client::connect(self.host.socket()).unwrap()
    }

    /// The whole store, `path = value`, depth first.
    pub fn dump(&self) -> Vec<String> {
        use vusb_xenstore::{TxId, Xenstore, XenstoreExt};
        fn walk(xs: &impl Xenstore, path: &str, out: &mut Vec<String>) {
            let dir = if path.is_empty() { "/" } else { path };
            for child in xs.directory_opt(TxId::NONE, dir).unwrap() {
                let p = format!("{path}/{child}");
                let v = xs.read(TxId::NONE, &p).unwrap_or_default();
                out.push(format!("{p} = {}", String::from_utf8_lossy(&v)));
                walk(xs, &p, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.xs(), "", &mut out);
        out
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "vusb {args:?}: {}", text(&o));
        stdout(&o)
    }

    /// Run, expect exit status `code`; stdout+stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(code), "vusb {args:?}: {}", text(&o));
        o
    }

    pub fn sysfs(&self) -> PathBuf {
        self.host.paths().sysfs_root
    }

    /// Take device `busid` out of sysfs, as an unplug does.
    pub fn unplug(&self, busid: &str) {
        let devs = self.sysfs().join("bus/usb/devices");
        let names: Vec<String> = std::fs::read_dir(&devs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n == busid || n.starts_with(&format!("{busid}:")))
            .collect();
        assert!(!names.is_empty(), "no {busid} in {}", devs.display());
        for n in names {
            remove(&devs.join(n));
        }
    }

    /// A xenstore node (through the simulated host's socket).
    pub fn node(&self, path: &str) -> Option<String> {
        use vusb_xenstore::{TxId, XenstoreExt};
        let xs = vusb_xenstore::client::Client::connect(self.host.socket()).unwrap();
        xs.read_opt(TxId::NONE, path).unwrap()
    }

    /// The busid at guest `domid`'s qusb/pv controller 0 port `port`.
    pub fn port(&self, domid: u32, kind: &str, port: u32) -> Option<String> {
        self.node(&format!(
            "/local/domain/0/backend/{kind}/{domid}/0/port/{port}"
        ))
        .filter(|v| !v.is_empty())
    }
}

fn remove(p: &Path) {
    let meta = std::fs::symlink_metadata(p).unwrap();
    if meta.is_dir() {
        std::fs::remove_dir_all(p).unwrap();
    } else {
        std::fs::remove_file(p).unwrap();
    }
}
