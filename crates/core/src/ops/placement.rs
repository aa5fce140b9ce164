//! Placement: which port of which controller a device goes to, claimed in
//! one xenstore transaction. One loop for host devices
//! ([`super::attach`]) and QEMU's emulated devices
//! ([`super::emulated`]); the port choice itself ([`pick`]) also serves
//! plain QEMU VMs ([`crate::qemu_vm`]).
//!
//! Inside one transaction the caller's [`Claim::check`] runs (a host
//! device: "not assigned anywhere"), the port is chosen — the given one,
//! which must be in range and free, else the first free port in
//! controller order — and [`Claim::write`] writes the claim (port node and
//! record). Before the commit the chosen controller's lock is taken
//! shared ([`crate::lock`]): a controller is never removed while a claim
//! on it is being made or used. A concurrent claim of the same port or
//! device makes one commit fail with `EAGAIN`; the retry sees the winner.
//!
//! When no controller has a free port, the guest lock is taken (so
//! concurrent attaches create one controller, not one each), the choice
//! is made again, and only then a controller is created
//! ([`super::controller::create`]). Controllers created here are removed
//! again by [`undo_created`] when the attach fails — unless another
//! operation holds a claim on them.

use std::collections::BTreeSet;

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore, XenstoreExt, XenstoreWatch};
use vusb_xlcfg::UsbCtrlSpec;

use super::common::{OpEnv, at};
use crate::devicemodel::EmulatedKind;
use crate::domain::Domain;
use crate::layout::read::{list_devids, read_controller};
use crate::layout::{Controller, UsbCtrlType};
use crate::lock::{self, Held, Mode};
use crate::{Error, Result, emulated};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

/// Where the device went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// Controller devid.
    pub ctrl: u32,
    /// Port.
    pub port: u32,
    /// The host device (`None` for an emulated device).
    pub busid: Option<BusId>,
    /// The controller devid if one had to be created for this device.
    pub created_ctrl: Option<u32>,
    /// For `type=tablet|mouse|keyboard`: the emulated device (then
    /// `busid` is empty).
    pub emulated: Option<EmulatedKind>,
    /// What the user should know although it worked (a SuperSpeed device
    /// on a USB2 controller runs at high speed); the CLI prints each as
    /// `vusb: notice: …`.
    pub notices: Vec<String>,
}

/// The controller the user named, which must exist.
pub(crate) fn explicit_controller<X: Xenstore + ?Sized>(
    xs: &X,
    dom: &Domain,
    controller: Option<u32>,
) -> Result<Option<Controller>> {
    match controller {
        None => Ok(None),
        Some(devid) => {
            let missing = || Error::MissingNode {
                path: format!("/libxl/{}/device/vusb/{devid}", dom.domid),
            };
            Ok(Some(
                read_controller(xs, TxId::NONE, dom.domid, devid)?.ok_or_else(missing)?,
            ))
        }
    }
}

/// What the caller writes into the placing transaction.
pub(crate) trait Claim {
    /// Inside the transaction, before the port is chosen.
    fn check(&mut self, tx: TxId) -> Result<()>;
    /// Inside the transaction: claim `port` of `ctrl`.
    fn write(&mut self, tx: TxId, ctrl: &Controller, port: u32) -> Result<()>;
    /// Before a controller is created for the device: can it carry it?
    fn fits(&mut self, _proto: &Controller) -> Result<()> {
        Ok(())
    }
}

/// Where a device should go.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The controller the user named (it exists).
    pub explicit: Option<Controller>,
    /// The port the user named (needs `explicit`).
    pub port: Option<u32>,
    /// Consider devicemodel controllers only (emulated devices).
    pub only_devicemodel: bool,
    /// The controller to create when none has a free port.
    pub new_ctrl: UsbCtrlSpec,
}

/// A claimed port.
#[derive(Debug)]
pub(crate) struct Placement {
    /// The controller.
    pub ctrl: Controller,
    /// The port.
    pub port: u32,
    /// Controllers created for this device.
    pub created: Vec<Controller>,
    /// The controller's lock, held shared.
    pub ctrl_lock: Held,
}

/// Where a device can go: a free port, or nowhere yet.
enum Choice {
    Port(Controller, u32),
    NeedController,
}

/// Abort `tx`, logging a failure to do so.
pub(crate) fn abort<X: Xenstore + ?Sized>(xs: &X, tx: TxId) {
    if let Err(e) = xs.transaction_end(tx, false) {
        log::debug!("aborting transaction: {e}");
    }
}

/// Place a device (see the module doc). On failure, controllers created
/// here are removed again.
pub(crate) fn place<X, C>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    req: &Request,
    claim: &mut C,
) -> Result<Placement>
where
    X: Xenstore + XenstoreWatch + ?Sized,
    C: Claim,
{
    let xs = env.xs;
    let mut created: Vec<Controller> = Vec::new();
    let mut guest_lock: Option<Held> = None;
    let mut ctrl_lock: Option<Held> = None;
    // Controllers whose interrupted removal could not be completed.
    let mut skip: BTreeSet<u32> = BTreeSet::new();
    let fail = |created: &[Controller], ctrl_lock: Option<Held>, e: Error| {
        undo_created(env, dom, created, ctrl_lock, e)
    };
    for attempt in 1..=ATTEMPTS {
        let tx = match xs.transaction_start() {
            Ok(tx) => tx,
            Err(e) => return Err(fail(&created, ctrl_lock, e.into())),
        };
        let choice = claim.check(tx).and_then(|()| {
            choose(
                xs,
                tx,
                dom,
                req.explicit.as_ref(),
                req.port,
                req.only_devicemodel,
                &skip,
            )
        });
        let (c, port) = match choice {
            Err(e) => {
                abort(xs, tx);
                return Err(fail(&created, ctrl_lock, e));
            }
            Ok(Choice::NeedController) => {
                abort(xs, tx);
                // Lock order: the guest lock before controller locks.
                ctrl_lock = None;
                if guest_lock.is_none() {
                    match lock::guest(env.paths, dom.domid, env.timeouts.lock_wait) {
                        Ok(g) => guest_lock = Some(g),
                        Err(e) => return Err(fail(&created, None, e)),
                    }
                    continue; // another attach may have created one meanwhile
                }
                // The controller that would be made must be able to carry
                // the device: refuse before creating it.
                let made = super::controller::resolve(env, dom, &req.new_ctrl).and_then(|proto| {
                    claim.fits(&proto)?;
                    super::controller::create_resolved(
                        env,
                        dom,
                        proto,
                        req.new_ctrl.model.as_deref(),
                        guest_lock.as_ref(),
                    )
                });
                match made {
                    Ok(c) => {
                        log::debug!(
                            "domain {}: created controller {} for a device",
                            dom.domid,
                            c.devid
                        );
                        created.push(c);
                    }
                    Err(e) => return Err(fail(&created, None, e)),
                }
                continue;
            }
            Ok(Choice::Port(c, port)) => (c, port),
        };
        // The controller's shared lock before the claim is committed.
        let name = lock::controller_name(c.domid, c.devid);
        if ctrl_lock.as_ref().map(Held::name) != Some(name.as_str()) {
            drop(ctrl_lock.take());
            match lock::try_acquire(env.paths, &name, Mode::Shared) {
                Ok(Some(h)) => ctrl_lock = Some(h),
                Ok(None) => {
                    // Being removed: wait outside the transaction, then
                    // choose again (it may be gone).
                    abort(xs, tx);
                    let wait = env.timeouts.lock_wait;
                    match lock::controller(env.paths, c.domid, c.devid, Mode::Shared, wait) {
                        Ok(h) => ctrl_lock = Some(h),
                        Err(e) => return Err(fail(&created, None, e)),
                    }
                    continue;
                }
                Err(e) => {
                    abort(xs, tx);
                    return Err(fail(&created, None, e));
                }
            }
        }
        // Holding its shared lock, no removal of `c` is running: one that
        // was interrupted is completed first (or `c` is avoided).
        match interrupted_removal(env, &c) {
            Ok(None) => {}
            Ok(Some(step)) => {
                abort(xs, tx);
                drop(ctrl_lock.take());
                let finished = finish_removal(env, &c, step);
                if req.explicit.is_some() {
                    return Err(fail(
                        &created,
                        None,
                        Error::ControllerRemovalInterrupted {
                            domid: c.domid,
                            devid: c.devid,
                            finished: finished.is_ok(),
                        },
                    ));
                }
                if finished.is_err() {
                    skip.insert(c.devid);
                }
                continue;
            }
            Err(e) => {
                abort(xs, tx);
                return Err(fail(&created, ctrl_lock, e));
            }
        }
        if let Err(e) = claim.write(tx, &c, port) {
            abort(xs, tx);
            return Err(fail(&created, ctrl_lock, e));
        }
        match xs.transaction_end(tx, true) {
            Ok(()) => {
                let Some(ctrl_lock) = ctrl_lock else {
                    unreachable_lock();
                    return Err(fail(&created, None, conflict()));
                };
                return Ok(Placement {
                    ctrl: c,
                    port,
                    created,
                    ctrl_lock,
                });
            }
            Err(e) if e.is_again() => {
                log::debug!("placement transaction conflict, attempt {attempt}");
            }
            Err(e) => return Err(fail(&created, ctrl_lock, e.into())),
        }
    }
    Err(fail(&created, ctrl_lock, conflict()))
}

/// The removal step `c`'s journal records, if one was interrupted (the
/// caller holds `c`'s shared lock, so no removal is running). No xenstore
/// request without a removal hint ([`crate::journal::removal_hint_path`]);
/// a stale hint is deleted.
fn interrupted_removal<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    c: &Controller,
) -> Result<Option<crate::journal::Step>> {
    use crate::journal::{self, Step};
    if !journal::removal_hinted(env.paths, c.domid, c.devid) {
        return Ok(None);
    }
    match journal::ctrl_read(env.xs, TxId::NONE, c.domid, c.devid)? {
        Some(s @ (Step::Detach | Step::Release)) => Ok(Some(s)),
        Some(Step::Attach | Step::Done) => Ok(None),
        None => {
            journal::clear_removal_hint(env.paths, c.domid, c.devid);
            Ok(None)
        }
    }
}

/// Complete the interrupted removal of `c` (as `usb-recover` would).
fn finish_removal<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    c: &Controller,
    step: crate::journal::Step,
) -> Result<()> {
    log::warn!(
        "domain {}: the removal of controller {} was interrupted; completing it before placing the device",
        c.domid,
        c.devid
    );
    match super::controller::recover(env, c.domid, c.devid, step) {
        Ok(super::controller::CtrlRecovered::Busy) => {
            log::warn!(
                "domain {}: controller {} is busy; not placing the device on it",
                c.domid,
                c.devid
            );
            Err(Error::Busy {
                what: format!("controller {} of domain {}", c.devid, c.domid),
                holder: lock::recorded_holder(env.paths, &lock::controller_name(c.domid, c.devid)),
                secs: 0.0,
            })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            log::warn!(
                "domain {}: completing the removal of controller {} failed: {e}; not placing the device on it",
                c.domid,
                c.devid
            );
            Err(e)
        }
    }
}

fn unreachable_lock() {
    log::error!("placement committed without the controller lock");
}

fn conflict() -> Error {
    Error::Xenstore(vusb_xenstore::Error::TransactionConflict { attempts: ATTEMPTS })
}

/// What [`pick`] found: a port, or none on any controller.
pub(crate) enum Pick<C> {
    /// This port of this controller.
    Port(C, u32),
    /// No controller has a free port (create one).
    NoneFree,
}

/// The port choice itself, over any view of controllers — a Xen guest's
/// (read inside the claim transaction) or a plain VM's (QEMU's
/// inventory): on `explicit` the given port, which must be in range and
/// free, or its first free port; without it the first free port of
/// `others`, in order (consumed lazily: nothing is read past the first
/// controller with a free port). `shape` gives a controller's devid and
/// number of ports; `free` says whether a port is free.
pub(crate) fn pick<C, E, I, S, F>(
    explicit: Option<C>,
    port: Option<u32>,
    others: I,
    shape: S,
    mut free: F,
) -> std::result::Result<Pick<C>, E>
where
    E: From<Error>,
    I: IntoIterator<Item = std::result::Result<C, E>>,
    S: Fn(&C) -> (u32, u32),
    F: FnMut(&C, u32) -> std::result::Result<bool, E>,
{
    if let Some(c) = explicit {
        let (devid, ports) = shape(&c);
        if let Some(p) = port {
            if !(1..=ports).contains(&p) {
                return Err(Error::PortOutOfRange {
                    devid,
                    port: i64::from(p),
                    ports,
                }
                .into());
            }
            if !free(&c, p)? {
                return Err(Error::PortInUse { devid, port: p }.into());
            }
            return Ok(Pick::Port(c, p));
        }
        for p in 1..=ports {
            if free(&c, p)? {
                return Ok(Pick::Port(c, p));
            }
        }
        return Err(Error::NoFreePort { devid }.into());
    }
    for c in others {
        let c = c?;
        let (_, ports) = shape(&c);
        for p in 1..=ports {
            if free(&c, p)? {
                return Ok(Pick::Port(c, p));
            }
        }
    }
    Ok(Pick::NoneFree)
}

/// Inside `tx`: the port a device goes to (see [`Request`]), by [`pick`]
/// over the guest's controllers read in `tx`. A devicemodel port holding
/// an emulated device is not free (one `directory` per devicemodel
/// controller probed, none for pv/qusb).
fn choose<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    dom: &Domain,
    explicit: Option<&Controller>,
    port_wanted: Option<u32>,
    only_devicemodel: bool,
    skip: &BTreeSet<u32>,
) -> Result<Choice> {
    let others: Vec<u32> = if explicit.is_some() {
        Vec::new()
    } else {
        list_devids(xs, tx, dom.domid)?
    };
    let candidates =
        others
            .into_iter()
            .filter_map(|devid| match read_controller(xs, tx, dom.domid, devid) {
                Ok(Some(c)) if only_devicemodel && c.ctype != UsbCtrlType::DeviceModel => None,
                Ok(Some(c)) if skip.contains(&c.devid) => None,
                Ok(Some(c)) => Some(Ok(c)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            });
    // The emulated ports of the controller being probed, read once.
    let mut emu: Option<(u32, BTreeSet<u32>)> = None;
    let free = |c: &Controller, port: u32| -> Result<bool> {
        if emu.as_ref().map(|(d, _)| *d) != Some(c.devid) {
            emu = Some((c.devid, occupied_if_dm(xs, tx, c)?));
        }
        let none = BTreeSet::new();
        let taken = emu.as_ref().map(|(_, e)| e).unwrap_or(&none);
        port_free(xs, tx, c, port, taken)
    };
    let shape = |c: &Controller| (c.devid, c.ports);
    Ok(
        match pick(explicit.cloned(), port_wanted, candidates, shape, free)? {
            Pick::Port(c, p) => Choice::Port(c, p),
            Pick::NoneFree => Choice::NeedController,
        },
    )
}

/// Whether `port` of `c` is free: the libxl port node empty and, for
/// devicemodel controllers, no emulated record in `emu`.
fn port_free<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    c: &Controller,
    port: u32,
    emu: &BTreeSet<u32>,
) -> Result<bool> {
    if emu.contains(&port) {
        return Ok(false);
    }
    let path = c.port_path(port);
    Ok(xs.read_opt(tx, &path).map_err(at(&path))?.as_deref() == Some(""))
}

/// The emulated records of `c` if it is a devicemodel controller (one
/// request), nothing (no request) for pv/qusb.
fn occupied_if_dm<X: Xenstore + ?Sized>(xs: &X, tx: TxId, c: &Controller) -> Result<BTreeSet<u32>> {
    if c.ctype == UsbCtrlType::DeviceModel {
        emulated::occupied(xs, tx, c.domid, c.devid)
    } else {
        Ok(BTreeSet::new())
    }
}

/// After a failed attach: remove the controllers it created, unless
/// another operation holds a claim on one (then it stays, in use), and
/// return `e`. `ctrl_lock` is this attach's shared hold on one of them.
pub(crate) fn undo_created<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    created: &[Controller],
    mut ctrl_lock: Option<Held>,
    e: Error,
) -> Error {
    for c in created.iter().rev() {
        let name = lock::controller_name(c.domid, c.devid);
        let held = match ctrl_lock.take() {
            Some(h) if h.name() == name => h.try_upgrade(),
            other => {
                ctrl_lock = other;
                lock::try_acquire(env.paths, &name, Mode::Exclusive)
            }
        };
        match held {
            Ok(Some(h)) => {
                if let Err(r) = super::controller::remove_if_unused(env, dom, c, &h) {
                    log::warn!(
                        "could not remove controller {} created for this attach: {r}",
                        c.devid
                    );
                }
            }
            Ok(None) => log::debug!(
                "domain {}: controller {} created for this attach is in use by another operation; kept",
                dom.domid,
                c.devid
            ),
            Err(r) => log::warn!("controller {}: {r}", c.devid),
        }
    }
    e
}
