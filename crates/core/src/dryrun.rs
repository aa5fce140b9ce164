//! Dry runs (xl's global `-N`, a vusb extension for the USB commands): run
//! the very same operation code, but record every change it would make
//! instead of making it.
//!
//! A [`Plan`] travels in [`HostPaths::dry_run`](crate::HostPaths), so every
//! place that touches the host already has it: sysfs binds
//! ([`crate::rebind`]), QMP commands ([`crate::devicemodel::DmConn`]), the
//! qusb backend process ([`crate::qusb_backend`]), files (libxl JSON, the
//! saved configuration, rules), locks (none are taken, nor a
//! controller's removal hint written) and
//! waits for other parties (recorded, then treated as satisfied: nobody
//! will answer a change that was not made). Xenstore goes through
//! [`DryXenstore`] ([`xenstore`]): reads reach the real store, changes stay
//! in an in-memory overlay that later reads of the same command see, and
//! are recorded in order, a transaction's only when it commits.
//!
//! Because it is the operation code itself that runs, the plan cannot
//! drift from what a real run does; what it cannot know is how other
//! parties would answer (a backend, QEMU, the guest): the plan assumes they
//! answer as asked, and values only a real run learns (the pid of a QEMU
//! started) are shown as placeholders ([`PLACEHOLDER_PID`]).
//!
//! A new way of changing the host must go through one of these seams (or
//! check [`crate::HostPaths::plan`] where it happens): the CLI's dry-run
//! tests run every `vusb -N` under `strace -f` and fail on any
//! file-changing system call, and compare each plan with what the real
//! run then does.

pub mod xenstore;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vusb_xenstore::Perm;

pub use xenstore::DryXenstore;

/// What a dry run writes where a real run writes the pid of a process it
/// started (it is not started, so there is no pid).
pub const PLACEHOLDER_PID: &str = "<pid>";

/// One change a command would make, in the order it would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `XS_WRITE`.
    XenstoreWrite {
        /// The node.
        path: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// `XS_MKDIR` of a node that did not exist.
    XenstoreMkdir {
        /// The node.
        path: String,
    },
    /// `XS_RM` of a node and its subtree.
    XenstoreRm {
        /// The node.
        path: String,
    },
    /// `XS_SET_PERMS`.
    XenstoreSetPerms {
        /// The node.
        path: String,
        /// Owner first, then the ACL.
        perms: Vec<Perm>,
    },
    /// A xenstore transaction starts; its changes follow, then
    /// [`Effect::TransactionCommit`].
    TransactionStart,
    /// The transaction commits.
    TransactionCommit,
    /// A write to a sysfs attribute (`unbind`, `bind`, ...).
    SysfsWrite {
        /// The attribute file.
        path: PathBuf,
        /// What is written.
        value: String,
        /// What it does, for the reader (`unbind from usb-storage`).
        note: String,
    },
    /// A QMP command that changes the VM (`device_add`, `device_del`,
    /// `quit`).
    Qmp {
        /// The command.
        command: String,
        /// Its arguments (`null` when none).
        arguments: serde_json::Value,
    },
    /// A wait for another party, assumed to succeed.
    Wait {
        /// What is waited for.
        what: String,
        /// The longest the real run would wait.
        max: Duration,
    },
    /// A process started.
    Start {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A file written (atomically: temporary file, then rename).
    FileWrite {
        /// The file.
        path: PathBuf,
        /// Its new content.
        content: Vec<u8>,
    },
    /// A file removed.
    FileRemove {
        /// The file.
        path: PathBuf,
    },
    /// A request to a running `vusb daemon` (`reload` after a rule change).
    DaemonRequest {
        /// Its control socket.
        socket: PathBuf,
        /// The request line.
        request: String,
    },
}

fn text(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::XenstoreWrite { path, value } => {
                write!(f, "xenstore write {path} = {}", text(value))
            }
            Effect::XenstoreMkdir { path } => write!(f, "xenstore mkdir {path}"),
            Effect::XenstoreRm { path } => write!(f, "xenstore rm {path}"),
            Effect::XenstoreSetPerms { path, perms } => {
                let p: Vec<String> = perms.iter().map(Perm::to_string).collect();
                write!(f, "xenstore set_perms {path} {}", p.join(" "))
            }
            Effect::TransactionStart => write!(f, "xenstore transaction start"),
            Effect::TransactionCommit => write!(f, "xenstore transaction commit"),
            Effect::SysfsWrite { path, value, note } => {
                write!(f, "sysfs write {} = {value:?} ({note})", path.display())
            }
            Effect::Qmp { command, arguments } if arguments.is_null() => {
                write!(f, "qmp {command}")
            }
            Effect::Qmp { command, arguments } => write!(f, "qmp {command} {arguments}"),
            Effect::Wait { what, max } => {
                write!(
                    f,
                    "wait for {what} (at most {} s)",
                    max.as_secs_f64().ceil()
                )
            }
            Effect::Start { program, args } => {
                write!(f, "start {} {}", program.display(), args.join(" "))
            }
            Effect::FileWrite { path, content } => {
                write!(f, "file write {} ({} bytes)", path.display(), content.len())
            }
            Effect::FileRemove { path } => write!(f, "file remove {}", path.display()),
            Effect::DaemonRequest { socket, request } => {
                write!(f, "daemon request {request} to {}", socket.display())
            }
        }
    }
}

impl Effect {
    /// The effect as JSON (`{"kind": "xenstore-write", ...}`), for
    /// `vusb -N ... --json`-style consumers and tests.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Effect::XenstoreWrite { path, value } => json!({
                "kind": "xenstore-write", "path": path,
                "value": String::from_utf8_lossy(value)}),
            Effect::XenstoreMkdir { path } => json!({"kind": "xenstore-mkdir", "path": path}),
            Effect::XenstoreRm { path } => json!({"kind": "xenstore-rm", "path": path}),
            Effect::XenstoreSetPerms { path, perms } => json!({
                "kind": "xenstore-set-perms", "path": path,
                "perms": perms.iter().map(Perm::to_string).collect::<Vec<_>>()}),
            Effect::TransactionStart => json!({"kind": "transaction-start"}),
            Effect::TransactionCommit => json!({"kind": "transaction-commit"}),
            Effect::SysfsWrite { path, value, note } => json!({
                "kind": "sysfs-write", "path": path, "value": value, "note": note}),
            Effect::Qmp { command, arguments } => json!({
                "kind": "qmp", "command": command, "arguments": arguments}),
            Effect::Wait { what, max } => json!({
                "kind": "wait", "what": what, "max_secs": max.as_secs_f64()}),
            Effect::Start { program, args } => json!({
                "kind": "start", "program": program, "args": args}),
            Effect::FileWrite { path, content } => json!({
                "kind": "file-write", "path": path, "bytes": content.len()}),
            Effect::FileRemove { path } => json!({"kind": "file-remove", "path": path}),
            Effect::DaemonRequest { socket, request } => json!({
                "kind": "daemon-request", "socket": socket, "request": request}),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    effects: Vec<Effect>,
    /// interface → the driver it would be on (`None`: unbound).
    drivers: std::collections::BTreeMap<String, Option<String>>,
    /// file → its planned content (`None`: removed).
    files: std::collections::BTreeMap<PathBuf, Option<Vec<u8>>>,
}

/// The recorded plan of one dry run; clones share it.
#[derive(Clone, Default)]
pub struct Plan {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plan({} effects)", self.lock().effects.len())
    }
}

/// Two handles are equal when they share one plan.
impl PartialEq for Plan {
    fn eq(&self, other: &Plan) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for Plan {}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves a usable list behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one effect.
    pub fn record(&self, effect: Effect) {
        log::debug!("dry run: {effect}");
        self.lock().effects.push(effect);
    }

    /// Record several effects at once (a committed transaction).
    pub(crate) fn record_all(&self, effects: Vec<Effect>) {
        let mut st = self.lock();
        st.effects.extend(effects);
    }

    /// Record a wait for another party (assumed to succeed).
    pub fn wait(&self, what: impl fmt::Display, max: Duration) {
        self.record(Effect::Wait {
            what: what.to_string(),
            max,
        });
    }

    /// The effects recorded so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.lock().effects.clone()
    }

    /// The driver the plan has put `interface` on: `None` when the plan
    /// has not moved it, `Some(None)` when it would be unbound.
    pub fn planned_driver(&self, interface: &str) -> Option<Option<String>> {
        self.lock().drivers.get(interface).cloned()
    }

    /// Note where the plan puts `interface`.
    pub fn set_driver(&self, interface: &str, driver: Option<&str>) {
        self.lock()
            .drivers
            .insert(interface.to_owned(), driver.map(str::to_owned));
    }

    /// Record that `path` would be written with `content`; later reads of
    /// it in the same dry run see that content.
    pub fn write_file(&self, path: &std::path::Path, content: &[u8]) {
        self.lock()
            .files
            .insert(path.to_path_buf(), Some(content.to_vec()));
        self.record(Effect::FileWrite {
            path: path.to_path_buf(),
            content: content.to_vec(),
        });
    }

    /// The planned content of `path`: `None` when the plan has not touched
    /// it, `Some(None)` when it would be removed.
    pub fn planned_file(&self, path: &std::path::Path) -> Option<Option<Vec<u8>>> {
        self.lock().files.get(path).cloned()
    }

    /// Wrap a xenstore connection: reads pass through, changes are
    /// recorded in this plan ([`DryXenstore`]).
    pub fn xenstore<X>(&self, xs: X) -> DryXenstore<X> {
        DryXenstore::new(xs, Some(self.clone()))
    }
}

/// Write `content` to `path` atomically ([`crate::statefile`]), or, in a
/// dry run, record that it would be.
pub(crate) fn write_file(
    plan: Option<&Plan>,
    path: &std::path::Path,
    content: &[u8],
) -> std::io::Result<()> {
    match plan {
        Some(p) => {
            p.write_file(path, content);
            Ok(())
        }
        None => crate::statefile::write_atomic(path, content),
    }
}

/// Read a small file ([`crate::small_file::read`]) as the plan would have
/// left it: its planned content, `NotFound` when planned removed.
pub(crate) fn read_file(
    plan: Option<&Plan>,
    path: &std::path::Path,
    max: u64,
) -> std::io::Result<Vec<u8>> {
    match plan.and_then(|p| p.planned_file(path)) {
        Some(Some(content)) => Ok(content),
        Some(None) => Err(std::io::ErrorKind::NotFound.into()),
        None => crate::small_file::read(path, max),
    }
}

/// Remove `path` (absent is fine), or record that it would be removed
/// (only when it exists).
pub(crate) fn remove_file(plan: Option<&Plan>, path: &std::path::Path) -> std::io::Result<()> {
    match plan {
        Some(p) => {
            let exists = match p.planned_file(path) {
                Some(planned) => planned.is_some(),
                None => std::fs::symlink_metadata(path).is_ok(),
            };
            if exists {
                p.lock().files.insert(path.to_path_buf(), None);
                p.record(Effect::FileRemove {
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        }
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_print_one_line_each() {
        let p = Plan::new();
        p.record(Effect::XenstoreWrite {
            path: "/a/port/1".into(),
            value: b"1-1".to_vec(),
        });
        p.wait("backend /b to reach state 4", Duration::from_secs(10));
        p.record(Effect::Qmp {
            command: "device_del".into(),
            arguments: serde_json::json!({"id": "x"}),
        });
        let lines: Vec<String> = p.effects().iter().map(Effect::to_string).collect();
        assert_eq!(
            lines,
            [
                "xenstore write /a/port/1 = \"1-1\"",
                "wait for backend /b to reach state 4 (at most 10 s)",
                "qmp device_del {\"id\":\"x\"}",
            ]
        );
        assert_eq!(p.effects()[0].to_json()["kind"], "xenstore-write");
    }

    #[test]
    fn clones_share_one_plan() {
        let p = Plan::new();
        let q = p.clone();
        q.set_driver("1-1:1.0", None);
        assert_eq!(p.planned_driver("1-1:1.0"), Some(None));
        assert_eq!(p, q);
        assert_ne!(p, Plan::new());
    }
}
