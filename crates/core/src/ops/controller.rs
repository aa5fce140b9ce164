//! Creating and removing a guest's virtual USB controller: what
//! `usbctrl-attach` and `usbctrl-detach` do, shared with the attach that
//! needs a new controller ([`super::placement`]), `usb-release` and
//! `config-apply`.
//!
//! Creation (libxl's `libxl__device_usbctrl_add`): the devid is chosen
//! inside the writing transaction, under the guest lock
//! ([`crate::lock`]), so concurrent creations in one guest neither
//! collide nor run out of transaction retries; pv waits for the backend
//! (state 2, 3 or 4 accepted: a fast backend may be Connected already);
//! devicemodel sends QMP `device_add`; a failure removes the nodes again
//! (libxl leaves them for pv, bug C2).
//!
//! Removal (libxl's `libxl__initiate_device_usbctrl_remove`): under the
//! locks of the devices on it and its own exclusive lock (so no claim on it
//! is being made or used), every device is detached first
//! ([`super::teardown`]), then pv/qusb: backend `online`=0, `state`=5, wait
//! for 6 (a backend that does not close in time is removed anyway, as
//! libxl's forced retry ends); devicemodel: QMP `device_del`; then the
//! frontend, `/libxl` and backend directories, emptied parents pruned.
//!
//! vusb extensions: `type=pv` without dom0's usbback driver fails at once
//! naming it (libxl waits 10 s for a backend that never answers); a qusb
//! controller of a PV guest without a device model starts the guest's
//! QEMU backend as libxl would have at creation, and the removal of the
//! last one stops it ([`crate::qusb_backend`]).

use std::collections::BTreeSet;

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore, XenstoreWatch, transaction};
use vusb_xlcfg::UsbCtrlSpec;

use super::common::{OpEnv, check_device_model, ctrl_defaults, resolve_ctrl_type, usbback_loaded};
use super::teardown::Why;
use crate::domain::Domain;
use crate::journal::{self, Step};
use crate::layout::read::{read_controller, read_port, read_port_busid};
use crate::layout::remove::{close_backend, destroy_nodes};
use crate::layout::wait::{STATE_CONNECTED, STATE_INIT_WAIT, wait_state};
use crate::layout::write::{nextid, write_controller};
use crate::layout::{Controller, UsbCtrlType};
use crate::lock::{self, Held, Mode};
use crate::{Error, Result, bookkeeping};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Rounds of "lock the devices seen on the controller, then the
/// controller" before giving up (a device attached meanwhile needs one
/// more round).
const LOCK_ROUNDS: u32 = 4;

/// Resolve `spec` for `dom` without writing anything: the controller that
/// would be created (devid not yet chosen: 0).
pub fn resolve<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbCtrlSpec,
) -> Result<Controller> {
    let ctype = resolve_ctrl_type(env.xs, env.paths, dom.domid, spec.kind)?;
    if ctype == UsbCtrlType::Pv && !usbback_loaded(env.paths) {
        // libxl would wait 10 s for a backend that can never answer.
        return Err(Error::UsbbackMissing {
            driver_dir: vusb_host::bind::driver_dir(
                &env.paths.sysfs_root,
                vusb_host::bind::USBBACK,
            ),
        });
    }
    let (version, ports) = match ctype {
        UsbCtrlType::DeviceModel => super::dm::resolve(
            spec.version_or_zero(),
            spec.ports_or_zero(),
            spec.model.as_deref(),
        )?,
        _ => ctrl_defaults(ctype, spec.version_or_zero(), spec.ports_or_zero())?,
    };
    Ok(Controller {
        domid: dom.domid,
        devid: 0,
        ctype,
        version,
        ports,
    })
}

/// Create the controller `spec` describes and return it (with its devid).
/// `guest_lock`: the guest lock if the caller holds it already.
pub fn create<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbCtrlSpec,
    guest_lock: Option<&Held>,
) -> Result<Controller> {
    let proto = resolve(env, dom, spec)?;
    create_resolved(env, dom, proto, spec.model.as_deref(), guest_lock)
}

/// Create a resolved controller (its `devid` is ignored and allocated);
/// `model` is vusb's `model=` for devicemodel controllers.
pub fn create_resolved<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    proto: Controller,
    model: Option<&str>,
    guest_lock: Option<&Held>,
) -> Result<Controller> {
    // vusb extension: a PV guest's qusb backend is started on demand,
    // under the guest lock (one start however many attaches race).
    let started = {
        let _own = match guest_lock {
            Some(_) => None,
            None => Some(lock::guest(env.paths, dom.domid, env.timeouts.lock_wait)?),
        };
        crate::qusb_backend::ensure(env.xs, env.paths, dom, proto.ctype)?
    };
    // A dry run did not start QEMU, which would announce its backends:
    // the device-model check assumes it did, as the plan's wait does.
    let assumed = started && env.paths.plan().is_some();
    let made = create_checked(env, dom, proto, model, guest_lock, assumed);
    if made.is_err()
        && started
        && let Err(e) = crate::qusb_backend::stop_if_unused(env.xs, env.paths, dom)
    {
        log::warn!("{e}");
    }
    made
}

fn create_checked<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    proto: Controller,
    model: Option<&str>,
    guest_lock: Option<&Held>,
    planned_backend: bool,
) -> Result<Controller> {
    let xs = env.xs;
    if !planned_backend {
        check_device_model(xs, dom.domid, proto.ctype)?;
    }
    crate::assign::ensure_prefix(xs, TxId::NONE)?;
    // The guest lock is held until the journal entry is dropped: recovery
    // knows a creation is dead when it can take the lock.
    let _own = match guest_lock {
        Some(_) => None,
        None => Some(lock::guest(env.paths, dom.domid, env.timeouts.lock_wait)?),
    };
    let ctrl = create_in_store(xs, dom, &proto)?;
    log::debug!(
        "domain {}: created {} controller {} (usb {}, {} ports)",
        dom.domid,
        ctrl.ctype,
        ctrl.devid,
        ctrl.version,
        ctrl.ports
    );
    if let Err(e) = bring_up(env, dom, &ctrl, model) {
        rollback(env, &ctrl);
        return Err(e);
    }
    if let Err(e) = bookkeeping::libxl_record_ctrl(env.xs, env.paths, dom.domid, &ctrl) {
        rollback(env, &ctrl);
        return Err(e);
    }
    bookkeeping::saved_record_ctrl(env.xs, env.paths, dom.domid, &ctrl);
    journal::ctrl_clear(xs, TxId::NONE, dom.domid, ctrl.devid)?;
    Ok(ctrl)
}

/// Write a new controller with the next free devid, in one transaction.
///
/// The caller holds the guest lock, so no other vusb creation runs; a
/// devid found taken inside the transaction (`xl` creating one, or C
/// xenstored showing the directory listing and the existence check at
/// different moments) re-runs the transaction, bounded.
fn create_in_store<X: Xenstore + ?Sized>(
    xs: &X,
    dom: &Domain,
    proto: &Controller,
) -> Result<Controller> {
    for attempt in 1..=ATTEMPTS {
        let created = transaction(xs, ATTEMPTS, |tx| {
            let mut c = proto.clone();
            c.devid = nextid(xs, tx, dom.domid)?;
            write_controller(xs, tx, &c)?;
            journal::ctrl_write(xs, tx, dom.domid, c.devid, Step::Attach)?;
            Ok::<Controller, Error>(c)
        });
        match created {
            Err(Error::ControllerExists { devid, .. }) => {
                log::debug!(
                    "domain {}: controller {devid} appeared meanwhile (attempt {attempt}); choosing again",
                    dom.domid
                );
            }
            other => return other,
        }
    }
    Err(Error::Xenstore(vusb_xenstore::Error::TransactionConflict {
        attempts: ATTEMPTS,
    }))
}

/// The type-specific part after the nodes exist: wait for the pv backend,
/// create the QEMU controller for devicemodel.
fn bring_up<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    model: Option<&str>,
) -> Result<()> {
    match ctrl.ctype {
        UsbCtrlType::Pv => {
            let Some(be) = ctrl.backend_dir() else {
                return Ok(());
            };
            let up = |s: Option<i64>| {
                s.is_some_and(|s| (STATE_INIT_WAIT..=STATE_CONNECTED).contains(&s))
            };
            wait_state(
                env.xs,
                env.paths.plan(),
                &be,
                STATE_INIT_WAIT as u32,
                env.timeouts.backend_connect,
                up,
            )
        }
        // libxl does not wait for QEMU's qusb backend (reference §4.7).
        UsbCtrlType::Qusb => Ok(()),
        UsbCtrlType::DeviceModel => super::dm::add_controller(env, dom, ctrl, model),
    }
}

fn rollback<X: Xenstore + ?Sized>(env: &OpEnv<'_, X>, ctrl: &Controller) {
    log::debug!(
        "domain {}: rolling back controller {}",
        ctrl.domid,
        ctrl.devid
    );
    let res = transaction(env.xs, ATTEMPTS, |tx| {
        destroy_nodes(env.xs, tx, ctrl)?;
        journal::ctrl_clear(env.xs, tx, ctrl.domid, ctrl.devid)
    });
    if let Err(e) = res {
        log::warn!(
            "domain {}: could not remove controller {} after a failed attach: {e}",
            ctrl.domid,
            ctrl.devid
        );
    }
}

/// The valid busids in `ctrl`'s port nodes.
fn busids_on<X: Xenstore + ?Sized>(xs: &X, ctrl: &Controller) -> Result<BTreeSet<BusId>> {
    let mut out = BTreeSet::new();
    for port in 1..=ctrl.ports {
        if let Some(b) = read_port_busid(xs, TxId::NONE, ctrl, port)? {
            out.insert(b);
        }
    }
    Ok(out)
}

/// Remove controller `ctrl` with its devices, under the locks (see the
/// module doc). `Ok(false)`: it was removed meanwhile by another command.
pub fn remove<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    why: Why,
) -> Result<bool> {
    let wait = env.timeouts.lock_wait;
    for round in 1..=LOCK_ROUNDS {
        let busids = busids_on(env.xs, ctrl)?;
        let mut dev_locks = Vec::with_capacity(busids.len());
        for b in &busids {
            dev_locks.push(lock::device(env.paths, b, wait)?);
        }
        let ctrl_lock = lock::controller(env.paths, dom.domid, ctrl.devid, Mode::Exclusive, wait)?;
        let Some(now) = read_controller(env.xs, TxId::NONE, dom.domid, ctrl.devid)? else {
            return Ok(false);
        };
        if busids_on(env.xs, &now)?.is_subset(&busids) {
            remove_locked(env, dom, &now, &ctrl_lock, why)?;
            return Ok(true);
        }
        log::debug!(
            "domain {}: a device was attached to controller {} meanwhile (round {round})",
            dom.domid,
            ctrl.devid
        );
    }
    Err(Error::Busy {
        what: format!("controller {} of domain {}", ctrl.devid, dom.domid),
        holder: "attaches that keep adding devices".into(),
        secs: wait.as_secs_f64(),
    })
}

/// Remove a controller whose exclusive lock (`_lock`) and device locks
/// the caller holds: the journal (`detach`/`release`), its devices, its
/// backend or QEMU controller, its bookkeeping, then its nodes and the
/// journal entry in one transaction.
fn remove_locked<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: &Controller,
    _lock: &Held,
    why: Why,
) -> Result<()> {
    let step = match why {
        Why::Detach => Step::Detach,
        Why::Release => Step::Release,
    };
    // The hint first, so that no journal entry is ever without it.
    journal::hint_removal(env.paths, dom.domid, ctrl.devid)?;
    journal::ctrl_write(env.xs, TxId::NONE, dom.domid, ctrl.devid, step)?;
    for port in 1..=ctrl.ports {
        if let Some(busid) = read_port_busid(env.xs, TxId::NONE, ctrl, port)? {
            super::teardown::detach_host(env, dom, ctrl, port, &busid, why).map_err(|e| {
                Error::Remove {
                    what: format!("the device at controller {} port {port}", ctrl.devid),
                    domid: dom.domid,
                    source: Box::new(e),
                }
            })?;
        }
    }
    // vusb's emulated devices (devicemodel only; no request for pv/qusb).
    super::teardown::detach_all_emulated(env, dom, ctrl)?;
    match ctrl.ctype {
        UsbCtrlType::Pv | UsbCtrlType::Qusb => {
            close_backend(env.xs, env.paths.plan(), ctrl, env.timeouts.backend_close)?;
        }
        UsbCtrlType::DeviceModel => super::dm::remove_controller(env, dom, ctrl)?,
    }
    bookkeeping::libxl_forget_ctrl(env.xs, env.paths, dom.domid, ctrl.devid);
    if why == Why::Detach {
        bookkeeping::saved_forget_ctrl(env.xs, env.paths, dom.domid, ctrl.devid);
    }
    transaction(env.xs, ATTEMPTS, |tx| {
        destroy_nodes(env.xs, tx, ctrl)?;
        if ctrl.ctype == UsbCtrlType::DeviceModel {
            crate::emulated::remove_ctrl(env.xs, tx, dom.domid, ctrl.devid)?;
        }
        journal::ctrl_clear(env.xs, tx, dom.domid, ctrl.devid)
    })?;
    journal::clear_removal_hint(env.paths, dom.domid, ctrl.devid);
    log::debug!("domain {}: removed controller {}", dom.domid, ctrl.devid);
    if ctrl.ctype == UsbCtrlType::Qusb
        && let Err(e) = crate::qusb_backend::stop_if_unused(env.xs, env.paths, dom)
    {
        log::warn!("{e}");
    }
    Ok(())
}

/// Remove a controller an attach created, if nothing is on it (a device
/// or an emulated device placed by another attach keeps it). The caller
/// holds its exclusive lock.
pub(crate) fn remove_if_unused<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    c: &Controller,
    lock: &Held,
) -> Result<()> {
    let Some(now) = read_controller(env.xs, TxId::NONE, dom.domid, c.devid)? else {
        return Ok(());
    };
    let emulated = now.ctype == UsbCtrlType::DeviceModel
        && !crate::emulated::occupied(env.xs, TxId::NONE, dom.domid, c.devid)?.is_empty();
    let mut used = emulated;
    for port in 1..=now.ports {
        used = used || read_port(env.xs, TxId::NONE, &now, port)?.is_some();
    }
    if used {
        log::debug!(
            "domain {}: controller {} is used by another device; kept",
            dom.domid,
            c.devid
        );
        return Ok(());
    }
    remove_locked(env, dom, &now, lock, Why::Detach)
}

/// What [`recover`] did with a controller journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlRecovered {
    /// Another command is creating or removing it; left alone.
    Busy,
    /// An interrupted creation, rolled back (the controller is gone).
    CreationRolledBack,
    /// An interrupted creation of a controller that is in use: its
    /// bookkeeping was written.
    CreationCompleted,
    /// An interrupted removal, completed.
    RemovalCompleted,
    /// The controller no longer exists; the entry was dropped.
    Gone,
}

/// Resolve one controller journal entry (see [`crate::journal`]).
pub fn recover<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    domid: u32,
    devid: u32,
    step: Step,
) -> Result<CtrlRecovered> {
    let dom = Domain {
        domid,
        arg: domid.to_string(),
    };
    let Some(ctrl) = read_controller(env.xs, TxId::NONE, domid, devid)? else {
        journal::ctrl_clear(env.xs, TxId::NONE, domid, devid)?;
        journal::clear_removal_hint(env.paths, domid, devid);
        return Ok(CtrlRecovered::Gone);
    };
    let ctrl_name = lock::controller_name(domid, devid);
    match step {
        Step::Attach => {
            let Some(_guest) =
                lock::try_acquire(env.paths, &lock::guest_name(domid), Mode::Exclusive)?
            else {
                return Ok(CtrlRecovered::Busy);
            };
            match lock::try_acquire(env.paths, &ctrl_name, Mode::Exclusive)? {
                Some(h) => {
                    remove_if_unused(env, &dom, &ctrl, &h)?;
                    if read_controller(env.xs, TxId::NONE, domid, devid)?.is_none() {
                        return Ok(CtrlRecovered::CreationRolledBack);
                    }
                }
                None => log::debug!("controller {devid} of domain {domid} is in use"),
            }
            // In use: it stays; complete its bookkeeping.
            bookkeeping::libxl_record_ctrl(env.xs, env.paths, domid, &ctrl)?;
            bookkeeping::saved_record_ctrl(env.xs, env.paths, domid, &ctrl);
            journal::ctrl_clear(env.xs, TxId::NONE, domid, devid)?;
            Ok(CtrlRecovered::CreationCompleted)
        }
        Step::Detach | Step::Release => {
            if lock::try_acquire(env.paths, &ctrl_name, Mode::Exclusive)?.is_none() {
                return Ok(CtrlRecovered::Busy);
            }
            let why = if step == Step::Release {
                Why::Release
            } else {
                Why::Detach
            };
            remove(env, &dom, &ctrl, why)?;
            Ok(CtrlRecovered::RemovalCompleted)
        }
        Step::Done => {
            journal::ctrl_clear(env.xs, TxId::NONE, domid, devid)?;
            Ok(CtrlRecovered::Gone)
        }
    }
}
