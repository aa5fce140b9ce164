//! `vusb usb-recover`: finish what interrupted vusb commands left, and
//! give back to their original drivers the devices whose driver memory (`/libxl/usbback`, [`crate::driver_memory`]) says
//! they were being handed to usbback, but which no domain holds — left so
//! by a process killed midway, or by a failed rollback. An extension: xl
//! has no such command (libxl leaves such devices on usbback forever).
//!
//! First the journal ([`crate::journal`]): every assignment record whose
//! step is not `done` is resolved by the hand-over executor
//! ([`super::handover::resolve`]): an interrupted attach is rolled back, an
//! interrupted detach or release completed. Each device is locked first
//! ([`crate::lock`], without waiting): a device another command is working
//! on is reported busy and left to that command. A malformed record is
//! reported and skipped; the others are still recovered.
//!
//! Then the driver memory (below), then the emulated devices' journal
//! ([`crate::emulated`]: a tablet/mouse/keyboard whose attach or detach
//! was interrupted is removed from QEMU and its record dropped, under the
//! controller's exclusive lock), then the controller journal
//! (`/vusb/ctrl`): an interrupted `usbctrl-attach` is rolled back (or, if a
//! device was placed on the controller meanwhile, its bookkeeping
//! written); an interrupted `usbctrl-detach`/`usb-release` is completed.
//!
//! A remembered device is left alone when:
//! - its assignment record ([`crate::assign`]) names a domain that exists
//!   and, for a `pv` controller, every interface is on usbback (it is
//!   assigned; `usbdev-detach` gives it back);
//! - it sits in the port table of an existing domain's controller (assigned
//!   by xl, which keeps no vusb record). This walk is libxl's §5.4 scan, run
//!   only when there is a candidate, so normally it costs nothing.
//!
//! A record naming a domain that no longer exists is stale: the device is
//! restored and the record released.
//!
//! A `pv` record of a living domain whose device is present but not fully
//! on usbback is an attach killed midway (vusb writes the record and the
//! port node first, then rebinds, as libxl orders it): it is rolled back as
//! libxl rolls back a failed attach, through the release plan at that
//! controller port (interfaces back on their drivers, port cleared, record
//! released). (Since the journal, vusb itself leaves no such record; one
//! written by an older vusb still is.)

use vusb_host::BusId;
use vusb_host::bind::{self, USBBACK};
use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};

use super::common::{OpEnv, at};
use super::controller::{self, CtrlRecovered};
use super::handover::{self, Resolved};
use super::teardown::{self, Why};
use crate::assign::Assignment;
use crate::journal::{self, Step};
use crate::layout::UsbCtrlType;
use crate::layout::read::read_controller;
use crate::lock::{self, Mode};
use crate::rebind::{self, Restored};
use crate::{Error, HostPaths, Result, assign, driver_memory};

/// What happened to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its interfaces are back on their drivers; the memory is gone.
    Restored(Vec<Restored>),
    /// It is assigned to a living domain; untouched.
    Assigned {
        /// The domain holding it.
        domid: u32,
    },
    /// An attach killed midway, rolled back: interfaces restored, the port
    /// cleared and the record released.
    AttachRolledBack {
        /// The domain the attach was for.
        domid: u32,
        /// Controller devid.
        ctrl: u32,
        /// Port.
        port: u32,
    },
    /// A detach (or release) killed midway, completed.
    DetachCompleted {
        /// The domain the device was detached from.
        domid: u32,
        /// Controller devid.
        ctrl: u32,
        /// Port.
        port: u32,
    },
    /// It is in a port node of an xl-made controller; untouched.
    InPortTable {
        /// The port node naming it.
        path: String,
    },
    /// Another vusb command holds the device (the lock file's holder);
    /// left to it.
    Busy {
        /// Who holds it.
        holder: String,
    },
    /// (`busid` names the controller.) An interrupted creation of this
    /// controller, rolled back: it is gone.
    ControllerRolledBack {
        /// The domain.
        domid: u32,
    },
    /// An interrupted creation of a controller another device was placed
    /// on meanwhile: kept, its bookkeeping written.
    ControllerCompleted {
        /// The domain.
        domid: u32,
    },
    /// An interrupted removal of this controller, completed.
    ControllerRemoved {
        /// The domain.
        domid: u32,
    },
    /// (`busid` names the emulated device and its port.) An interrupted
    /// attach (rolled back) or detach (completed): the device is no longer
    /// in QEMU and its record is gone.
    EmulatedRemoved {
        /// The domain.
        domid: u32,
        /// The step that was interrupted (`attach`, `detach`).
        step: &'static str,
    },
    /// Its record or memory is malformed (the reason); skipped.
    Skipped(String),
    /// Restoring failed (the message); the memory is kept for a retry.
    Failed(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The device.
    pub busid: String,
    /// What was done.
    pub outcome: Outcome,
}

/// The report line of an entry that could not be read: skipped, the
/// others recovered all the same.
fn skipped(what: String, why: String) -> Recovered {
    Recovered {
        busid: what,
        outcome: Outcome::Skipped(why),
    }
}

fn failed(e: &Error) -> Outcome {
    Outcome::Failed(vusb_host::discover::error_chain(e))
}

/// Resolve every interrupted operation and restore every remembered
/// device that no domain holds.
pub fn usb_recover<X: Xenstore + XenstoreWatch + ?Sized>(
    xs: &X,
    paths: &HostPaths,
) -> Result<Vec<Recovered>> {
    let env = OpEnv::new(xs, paths);
    let mut out = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for (name, entry) in assign::list_all(xs, TxId::NONE)? {
        let rec = match entry {
            Ok(r) if r.step != Step::Done => r,
            Ok(_) => continue,
            Err(e) => {
                log::warn!("skipping assignment record: {e}");
                out.push(skipped(name, e.to_string()));
                continue;
            }
        };
        done.insert(rec.busid.clone());
        let outcome =
            match lock::try_acquire(paths, &lock::device_name(&rec.busid), Mode::Exclusive)? {
                None => Outcome::Busy {
                    holder: lock::recorded_holder(paths, &lock::device_name(&rec.busid)),
                },
                Some(_held) => match assign::lookup(xs, TxId::NONE, &rec.busid) {
                    // Re-read under the lock: its owner may have finished.
                    Ok(Some(now)) => resolve_one(&env, &now),
                    Ok(None) => continue,
                    Err(e) => failed(&e),
                },
            };
        out.push(Recovered {
            busid: rec.busid.to_string(),
            outcome,
        });
    }
    recover_memory(&env, &done, &mut out)?;
    recover_emulated(&env, &mut out)?;
    recover_controllers(&env, &mut out)?;
    Ok(out)
}

/// The emulated devices' journal: each record left in `step=attach` or
/// `step=detach` is removed from QEMU (absent counts as removed) and
/// dropped, under its controller's exclusive lock (every emulated attach
/// and detach holds it shared, so a command still running is left alone).
fn recover_emulated<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    out: &mut Vec<Recovered>,
) -> Result<()> {
    for entry in crate::emulated::unfinished(env.xs, TxId::NONE)? {
        let (domid, devid, port, kind, step) = match entry {
            Ok(e) => e,
            Err((node, why)) => {
                log::warn!("skipping {node}: {why}");
                out.push(skipped(node, why));
                continue;
            }
        };
        let name = lock::controller_name(domid, devid);
        let what = format!(
            "emulated {} at controller {devid} port {port}",
            kind.spec_name()
        );
        let outcome = match lock::try_acquire(env.paths, &name, Mode::Exclusive)? {
            None => Outcome::Busy {
                holder: lock::recorded_holder(env.paths, &name),
            },
            Some(_held) => match resolve_emulated(env, domid, devid, port) {
                Ok(true) => Outcome::EmulatedRemoved {
                    domid,
                    step: step.as_str(),
                },
                Ok(false) => continue, // finished meanwhile
                Err(e) => failed(&e),
            },
        };
        out.push(Recovered {
            busid: what,
            outcome,
        });
    }
    Ok(())
}

/// Under the controller's exclusive lock: re-read the record, and if it is
/// still unfinished, remove the device from QEMU (when the domain still
/// exists) and drop the record. `Ok(false)`: nothing left to do.
fn resolve_emulated<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    domid: u32,
    devid: u32,
    port: u32,
) -> Result<bool> {
    match crate::emulated::read_entry(env.xs, TxId::NONE, domid, devid, port)? {
        Some((_, Step::Done)) | None => return Ok(false),
        Some(_) => {}
    }
    let live = domain_exists(env.xs, domid)?
        && read_controller(env.xs, TxId::NONE, domid, devid)?.is_some();
    if live {
        let dom = crate::domain::resolve(env.xs, &domid.to_string())?;
        let Some(kind) = crate::emulated::read(env.xs, TxId::NONE, domid, devid, port)? else {
            return Ok(false);
        };
        let qom = crate::devicemodel::DmDevice::Emulated(kind).qom_id(devid, port);
        super::dm::remove_device(env, &dom, &qom)?;
    }
    vusb_xenstore::transaction(env.xs, 8, |tx| {
        crate::emulated::remove(env.xs, tx, domid, devid, port)
    })?;
    Ok(true)
}

/// The controller journal: interrupted creations and removals.
fn recover_controllers<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    out: &mut Vec<Recovered>,
) -> Result<()> {
    for entry in journal::ctrl_list(env.xs, TxId::NONE)? {
        let (domid, devid, step) = match entry {
            Ok(e) => e,
            Err((node, why)) => {
                log::warn!("skipping {node}: {why}");
                out.push(skipped(node, why));
                continue;
            }
        };
        let outcome = match controller::recover(env, domid, devid, step) {
            Ok(CtrlRecovered::Busy) => Outcome::Busy {
                holder: lock::recorded_holder(env.paths, &lock::controller_name(domid, devid)),
            },
            Ok(CtrlRecovered::CreationRolledBack) => Outcome::ControllerRolledBack { domid },
            Ok(CtrlRecovered::CreationCompleted) => Outcome::ControllerCompleted { domid },
            Ok(CtrlRecovered::RemovalCompleted) => Outcome::ControllerRemoved { domid },
            Ok(CtrlRecovered::Gone) => continue,
            Err(e) => failed(&e),
        };
        out.push(Recovered {
            busid: format!("controller {devid}"),
            outcome,
        });
    }
    Ok(())
}

fn resolve_one<X: Xenstore + ?Sized>(env: &OpEnv<'_, X>, rec: &Assignment) -> Outcome {
    let (domid, ctrl, port) = (rec.domid, rec.ctrl, rec.port);
    match handover::resolve(env, rec) {
        Ok(Resolved::Attached) => Outcome::Assigned { domid },
        Ok(Resolved::RolledBack) => Outcome::AttachRolledBack { domid, ctrl, port },
        Ok(Resolved::RolledForward) => Outcome::DetachCompleted { domid, ctrl, port },
        Err(e) => failed(&e),
    }
}

/// The driver memory pass (see the module doc).
fn recover_memory<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    done: &std::collections::BTreeSet<BusId>,
    out: &mut Vec<Recovered>,
) -> Result<()> {
    let (xs, paths) = (env.xs, env.paths);
    let remembered = driver_memory::remembered_devices(xs)?;
    let mut port_table: Option<Vec<(String, String)>> = None;
    for name in remembered {
        if done.contains(name.as_str()) {
            continue;
        }
        let busid = match BusId::parse(&name) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("ignoring driver memory of {name:?}: {e}");
                out.push(skipped(name, format!("not a busid: {e}")));
                continue;
            }
        };
        let Some(_held) = lock::try_acquire(paths, &lock::device_name(&busid), Mode::Exclusive)?
        else {
            out.push(Recovered {
                busid: name.clone(),
                outcome: Outcome::Busy {
                    holder: lock::recorded_holder(paths, &lock::device_name(&busid)),
                },
            });
            continue;
        };
        let record = match assign::lookup(xs, TxId::NONE, &busid) {
            Ok(r) => r,
            Err(e) => {
                out.push(skipped(name, e.to_string()));
                continue;
            }
        };
        if let Some(a) = record {
            if domain_exists(xs, a.domid)? {
                let outcome =
                    if a.ctrl_type == UsbCtrlType::Pv && half_bound(&paths.sysfs_root, &busid) {
                        log::info!(
                            "{busid}: attach to domain {} was interrupted; rolling it back",
                            a.domid
                        );
                        match roll_back_attach(env, &a) {
                            Ok(()) => Outcome::AttachRolledBack {
                                domid: a.domid,
                                ctrl: a.ctrl,
                                port: a.port,
                            },
                            Err(e) => failed(&e),
                        }
                    } else {
                        Outcome::Assigned { domid: a.domid }
                    };
                out.push(Recovered {
                    busid: name,
                    outcome,
                });
                continue;
            }
            log::info!(
                "{busid}: its record names domain {}, which no longer exists",
                a.domid
            );
        }
        let table = match &port_table {
            Some(t) => t,
            None => port_table.insert(xl_port_table(xs)?),
        };
        if let Some((path, _)) = table.iter().find(|(_, v)| *v == busid.as_str()) {
            out.push(Recovered {
                busid: name,
                outcome: Outcome::InPortTable { path: path.clone() },
            });
            continue;
        }
        let outcome = match rebind::restore_with(xs, rebind::Drivers::of(paths), &busid) {
            Ok(list) => {
                match vusb_xenstore::transaction(xs, 8, |tx| assign::release(xs, tx, &busid)) {
                    Ok(()) => Outcome::Restored(list),
                    Err(e) => failed(&e),
                }
            }
            Err(e) => Outcome::Failed(vusb_host::discover::error_chain(&e)),
        };
        out.push(Recovered {
            busid: name,
            outcome,
        });
    }
    Ok(())
}

/// Present, with at least one interface not on usbback.
fn half_bound(root: &std::path::Path, busid: &BusId) -> bool {
    match bind::interfaces_of(root, busid) {
        Ok(list) if !list.is_empty() => list
            .iter()
            .any(|i| bind::driver_of(root, i).ok().flatten().as_deref() != Some(USBBACK)),
        _ => false,
    }
}

/// Undo an attach of an older vusb (no journal) the way a failed one is
/// undone: the release plan at the record's controller port.
fn roll_back_attach<X: Xenstore + ?Sized>(env: &OpEnv<'_, X>, a: &Assignment) -> Result<()> {
    let dom = crate::domain::resolve(env.xs, &a.domid.to_string())?;
    let Some(ctrl) = read_controller(env.xs, TxId::NONE, a.domid, a.ctrl)? else {
        return Err(Error::UnknownDevice {
            ctrl: a.ctrl.to_string(),
            port: a.port.to_string(),
        });
    };
    teardown::detach_host(env, &dom, &ctrl, a.port, &a.busid, Why::Detach)
}

fn domain_exists<X: Xenstore + ?Sized>(xs: &X, domid: u32) -> Result<bool> {
    let path = format!("/local/domain/{domid}");
    Ok(xs.read_opt(TxId::NONE, &path).map_err(at(&path))?.is_some())
}
/// `(port node, busid)` of every non-empty port of every controller of
/// every existing domain (libxl's layout: `/libxl/<d>/device/vusb/<c>`
/// names the backend, whose `port/<i>` holds the busid).
fn xl_port_table<X: Xenstore + ?Sized>(xs: &X) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for dom in xs
        .directory_opt(TxId::NONE, "/local/domain")
        .map_err(at("/local/domain"))?
    {
        let ctrl_dir = format!("/libxl/{dom}/device/vusb");
        for ctrl in xs
            .directory_opt(TxId::NONE, &ctrl_dir)
            .map_err(at(&ctrl_dir))?
        {
            let be_node = format!("{ctrl_dir}/{ctrl}/backend");
            let mut dirs = vec![format!("{ctrl_dir}/{ctrl}/port")];
            if let Some(be) = xs.read_opt(TxId::NONE, &be_node).map_err(at(&be_node))? {
                dirs.insert(0, format!("{be}/port"));
            }
            for dir in dirs {
                for port in xs.directory_opt(TxId::NONE, &dir).map_err(at(&dir))? {
                    let node = format!("{dir}/{port}");
                    if let Some(v) = xs.read_opt(TxId::NONE, &node).map_err(at(&node))?
                        && !v.is_empty()
                    {
                        out.push((node, v));
                    }
                }
            }
        }
    }
    Ok(out)
}
