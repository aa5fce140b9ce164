//! The QEMU that serves a PV guest's `qusb` controllers, started on demand.
//!
//! A qusb controller's backend lives in the guest's QEMU (machine
//! `xenpv`). libxl starts that QEMU only at `xl create`, and only when the
//! configuration needs one (`libxl__need_xenpv_qemu`: a qusb `usbctrl`, a
//! vfb, 9pfs...); hot-plugging a qusb controller later into a guest created
//! without one fails with "device model required but not running"
//! (reference §6.5). **Differs from xl**: vusb starts it then, for a
//! running PV/PVH domain, exactly as libxl would have at creation, and
//! stops it again when the domain's last qusb controller goes.
//!
//! What libxl does at creation, and so vusb (seen on Xen 4.17 with
//! `ps`/`xenstore-ls` on the real test bed, `docs/testing-real-xen.md`):
//! - program [`HostPaths::qemu_xen`] (Debian's
//!   `/usr/libexec/xen-qemu-system-i386`) with
//!   `-xen-domid D -no-shutdown -chardev socket,id=libxl-cmd,path=<qmp
//!   dir>/qmp-libxl-D,server=on,wait=off -mon chardev=libxl-cmd,mode=control
//!   -chardev socket,id=libxenstat-cmd,path=<qmp dir>/qmp-libxenstat-D,server=on,wait=off
//!   -mon chardev=libxenstat-cmd,mode=control -nodefaults -no-user-config
//!   -xen-attach -name NAME -vnc none -display none -nographic -machine
//!   xenpv -m MiB` (MiB = `memory/static-max - memory/videoram`, in KiB);
//! - environment `XEN_QEMU_CONSOLE_LIMIT=1048576` unless set (XSA-180);
//!   stdin `/dev/null`, stdout and stderr appended to
//!   `<xen log dir>/qemu-dm-NAME.log`; its own process group;
//! - xenstore: `/local/domain/0/device-model/D` created (a stale one
//!   removed first), QEMU's pid in `/local/domain/D/image/device-model-pid`,
//!   then a wait (libxl: 60 s) for QEMU's `.../device-model/D/state` =
//!   `running`.
//!
//! vusb records the QEMU it started as `/vusb/qusb-backend/D` = pid, so it
//! never stops one that xl started. Stopping: QMP `quit`, a wait for the
//! process to end, then the nodes libxl's destroy removes
//! (`device-model/D`, `device-model-pid`) and the QMP sockets. `xl destroy`
//! of the guest kills it as any device model (by `device-model-pid`).

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};

use crate::domain::{Domain, DomainType, domain_type};
use crate::dryrun::{Effect, PLACEHOLDER_PID, Plan};
use crate::layout::UsbCtrlType;
use crate::{Error, HostPaths, Result};

/// libxl's `LIBXL_DEVICE_MODEL_START_TIMEOUT`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a QEMU asked to quit may take to end.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// vusb's record of the backends it started: `/vusb/qusb-backend/<domid>`.
pub fn record_path(domid: DomId) -> String {
    format!("{}/qusb-backend/{domid}", crate::assign::VUSB_ROOT)
}

fn pid_path(domid: DomId) -> String {
    format!("/local/domain/{domid}/image/device-model-pid")
}

fn dm_dir(domid: DomId) -> String {
    format!("/local/domain/0/device-model/{domid}")
}

/// QEMU's arguments for a PV guest, as libxl builds them.
pub fn qemu_args(paths: &HostPaths, domid: DomId, name: &str, mem_mib: u64) -> Vec<String> {
    let sock = |kind: &str| paths.qmp_dir.join(format!("qmp-{kind}-{domid}"));
    let mut args: Vec<String> = vec![
        "-xen-domid".into(),
        domid.to_string(),
        "-no-shutdown".into(),
    ];
    for kind in ["libxl", "libxenstat"] {
        args.push("-chardev".into());
        args.push(format!(
            "socket,id={kind}-cmd,path={},server=on,wait=off",
            sock(kind).display()
        ));
        args.push("-mon".into());
        args.push(format!("chardev={kind}-cmd,mode=control"));
    }
    for a in [
        "-nodefaults",
        "-no-user-config",
        "-xen-attach",
        "-name",
        name,
        "-vnc",
        "none",
        "-display",
        "none",
        "-nographic",
        "-machine",
        "xenpv",
        "-m",
    ] {
        args.push(a.into());
    }
    args.push(mem_mib.to_string());
    args
}

/// Before a controller of type `ctype` is created for `dom`: start the
/// guest's QEMU backend if the type is qusb, the guest is PV or PVH and no
/// device model runs. Returns whether it was started (the caller stops it
/// again with [`stop_if_unused`] if the controller then cannot be made).
pub fn ensure<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    dom: &Domain,
    ctype: UsbCtrlType,
) -> Result<bool> {
    let domid = dom.domid;
    if ctype != UsbCtrlType::Qusb
        || xs.read_opt(TxId::NONE, &pid_path(domid))?.is_some()
        || !matches!(
            domain_type(xs, TxId::NONE, domid)?,
            Some(DomainType::Pv | DomainType::Pvh)
        )
    {
        return Ok(false);
    }
    start(xs, paths, domid)?;
    Ok(true)
}

fn start<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, domid: DomId) -> Result<()> {
    let home = format!("/local/domain/{domid}");
    let name = xs
        .read_opt(TxId::NONE, &format!("{home}/name"))?
        .unwrap_or_else(|| format!("domain-{domid}"));
    let kib = |node: &str| -> Result<u64> {
        Ok(xs
            .read_opt(TxId::NONE, &format!("{home}/memory/{node}"))?
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    };
    let mem_mib = kib("static-max")?.saturating_sub(kib("videoram")?) / 1024;
    let args = qemu_args(paths, domid, &name, mem_mib);
    let log = paths.xen_log_dir.join(format!("qemu-dm-{name}.log"));
    let failed = |source: std::io::Error| Error::QusbBackendStart {
        domid,
        program: paths.qemu_xen.clone(),
        source,
    };
    // A state left by a QEMU that died would look like a ready one.
    xs.rm_opt(TxId::NONE, &dm_dir(domid))?;
    xs.mkdir(TxId::NONE, &dm_dir(domid))?;
    if let Some(plan) = paths.plan() {
        return plan_start(xs, plan, paths, domid, args);
    }
    fs::create_dir_all(&paths.xen_log_dir).map_err(failed)?;
    fs::create_dir_all(&paths.qmp_dir).map_err(failed)?;
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(failed)?;
    let err = out.try_clone().map_err(failed)?;
    let mut cmd = Command::new(&paths.qemu_xen);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    if std::env::var_os("XEN_QEMU_CONSOLE_LIMIT").is_none() {
        cmd.env("XEN_QEMU_CONSOLE_LIMIT", "1048576");
    }
    log::debug!(
        "domain {domid}: starting the qusb backend: {} {}",
        paths.qemu_xen.display(),
        args.join(" ")
    );
    let child = cmd.spawn().map_err(|e| {
        let _ = xs.rm_opt(TxId::NONE, &dm_dir(domid));
        failed(e)
    })?;
    let pid = child.id();
    // Records first, so a stop (or xl destroy) finds it whatever happens next.
    crate::assign::ensure_prefix(xs, TxId::NONE)?;
    xs.write_str(TxId::NONE, &record_path(domid), &pid.to_string())?;
    xs.write_str(TxId::NONE, &pid_path(domid), &pid.to_string())?;
    let state = format!("{}/state", dm_dir(domid));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if xs.read_opt(TxId::NONE, &state)?.as_deref() == Some("running") {
            log::debug!("domain {domid}: qusb backend (QEMU pid {pid}) running");
            return Ok(());
        }
        let gone = !alive(&paths.proc_root, pid);
        if gone || Instant::now() >= deadline {
            if !gone {
                stop_pid(paths, domid, pid);
            }
            forget(xs, paths, domid);
            return Err(if gone {
                Error::QusbBackendExited { domid, log }
            } else {
                Error::QusbBackendNotReady {
                    domid,
                    secs: START_TIMEOUT.as_secs(),
                    log,
                }
            });
        }
        std::thread::sleep(POLL);
    }
}

/// [`start`] in a dry run: the process, its records (with a placeholder
/// for the pid only a real start learns) and the wait for it, recorded.
fn plan_start<X: Xenstore + ?Sized>(
    xs: &X,
    plan: &Plan,
    paths: &HostPaths,
    domid: DomId,
    args: Vec<String>,
) -> Result<()> {
    plan.record(Effect::Start {
        program: paths.qemu_xen.clone(),
        args,
    });
    crate::assign::ensure_prefix(xs, TxId::NONE)?;
    xs.write_str(TxId::NONE, &record_path(domid), PLACEHOLDER_PID)?;
    xs.write_str(TxId::NONE, &pid_path(domid), PLACEHOLDER_PID)?;
    plan.wait(
        format_args!("QEMU to write \"running\" to {}/state", dm_dir(domid)),
        START_TIMEOUT,
    );
    Ok(())
}

/// After a qusb controller of `dom` went (or could not be made): stop the
/// QEMU backend vusb started for it if no qusb controller is left. A QEMU
/// that xl started is never touched.
pub fn stop_if_unused<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, dom: &Domain) -> Result<()> {
    let domid = dom.domid;
    let Some(ours) = xs.read_opt(TxId::NONE, &record_path(domid))? else {
        return Ok(());
    };
    if xs.read_opt(TxId::NONE, &pid_path(domid))?.as_deref() != Some(ours.as_str()) {
        // Another device model runs now (or none): the record is stale.
        xs.rm_opt(TxId::NONE, &record_path(domid))?;
        return Ok(());
    }
    let vusb_dir = format!("/libxl/{domid}/device/vusb");
    for devid in xs.directory_opt(TxId::NONE, &vusb_dir)? {
        let t = xs.read_opt(TxId::NONE, &format!("{vusb_dir}/{devid}/type"))?;
        if t.as_deref() == Some("qusb") {
            return Ok(());
        }
    }
    let pid: u32 = ours.trim().parse().unwrap_or(0);
    log::debug!("domain {domid}: last qusb controller gone, stopping QEMU pid {pid}");
    if let Some(plan) = paths.plan() {
        plan.record(Effect::Qmp {
            command: "quit".into(),
            arguments: serde_json::Value::Null,
        });
        plan.wait(format_args!("QEMU pid {pid} to end"), STOP_TIMEOUT);
        forget(xs, paths, domid);
        return Ok(());
    }
    quit(paths, domid);
    let ended = wait_gone(&paths.proc_root, pid, STOP_TIMEOUT);
    forget(xs, paths, domid);
    if ended {
        Ok(())
    } else {
        Err(Error::QusbBackendStop { domid, pid })
    }
}

/// Ask QEMU to quit over its libxl QMP socket (best effort).
fn quit(paths: &HostPaths, domid: DomId) {
    let sock = paths.qmp_dir.join(format!("qmp-libxl-{domid}"));
    match vusb_qmp::Qmp::connect(&sock, Duration::from_secs(5)) {
        Ok(mut q) => {
            if let Err(e) = q.execute("quit", None) {
                // QEMU may close the socket before answering.
                log::debug!("domain {domid}: QMP quit: {e}");
            }
        }
        Err(e) => log::warn!("domain {domid}: cannot reach {}: {e}", sock.display()),
    }
}

fn stop_pid(paths: &HostPaths, domid: DomId, pid: u32) {
    quit(paths, domid);
    wait_gone(&paths.proc_root, pid, STOP_TIMEOUT);
}

/// Remove what libxl's destroy removes, and vusb's record.
fn forget<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, domid: DomId) {
    for p in [dm_dir(domid), pid_path(domid), record_path(domid)] {
        if let Err(e) = xs.rm_opt(TxId::NONE, &p) {
            log::warn!("domain {domid}: cannot remove {p}: {e}");
        }
    }
    for kind in ["libxl", "libxenstat"] {
        let sock = paths.qmp_dir.join(format!("qmp-{kind}-{domid}"));
        let _ = crate::dryrun::remove_file(paths.plan(), &sock);
    }
}

/// Whether process `pid` still runs (a zombie does not).
fn alive(proc_root: &Path, pid: u32) -> bool {
    match fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn wait_gone(proc_root: &Path, pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(proc_root, pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// The log file of the QEMU started for guest `name`.
pub fn log_path(paths: &HostPaths, name: &str) -> PathBuf {
    paths.xen_log_dir.join(format!("qemu-dm-{name}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_libxls_for_a_pv_guest() {
        let paths = HostPaths::default();
        let args = qemu_args(&paths, 3, "guest1", 256).join(" ");
        assert_eq!(
            args,
            "-xen-domid 3 -no-shutdown \
             -chardev socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-3,server=on,wait=off \
             -mon chardev=libxl-cmd,mode=control \
             -chardev socket,id=libxenstat-cmd,path=/var/run/xen/qmp-libxenstat-3,server=on,wait=off \
             -mon chardev=libxenstat-cmd,mode=control -nodefaults -no-user-config -xen-attach \
             -name guest1 -vnc none -display none -nographic -machine xenpv -m 256"
        );
    }

    #[test]
    fn zombies_and_missing_processes_are_not_alive() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path();
        for (pid, stat) in [(1, "1 (qemu (x)) S 0"), (2, "2 (qemu) Z 1")] {
            fs::create_dir_all(p.join(pid.to_string())).unwrap_or_else(|e| panic!("{e}"));
            fs::write(p.join(format!("{pid}/stat")), stat).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(alive(p, 1));
        assert!(!alive(p, 2));
        assert!(!alive(p, 3));
    }
}
