//! `usbctrl-attach`: create a virtual USB controller in a guest
//! (libxl's `libxl__device_usbctrl_add`, reference §7.1).
//!
//! Matches libxl: type resolution (HVM → devicemodel, else pv if usbback
//! is loaded, else qusb), version/ports defaults and limits with libxl's
//! messages, devid = last listed + 1, every node of §4 written in one
//! transaction, the device-model checks for qusb, the wait for the pv
//! backend, the libxl JSON entry with resolved values.
//!
//! Deliberately differs:
//! - the devid is chosen inside the writing transaction, so two concurrent
//!   attaches get different devids instead of one failing (R1-like race);
//! - pv: libxl waits for backend state == 2 exactly; vusb accepts 2, 3 or
//!   4, because a fast backend may already have moved on to Connected
//!   before the first read;
//! - a pv backend that never comes up is rolled back (all nodes removed),
//!   instead of leaving them behind (C2);
//! - devicemodel controllers whose QMP `device_add` fails are rolled back,
//!   as libxl does;
//! - `type=pv` without dom0's usbback driver fails at once, naming the
//!   missing driver (libxl waits 10 s for a backend that never answers);
//! - a qusb controller for a PV guest without a device model starts the
//!   guest's QEMU backend as libxl would have at creation
//!   ([`crate::qusb_backend`]; libxl: "device model required but not
//!   running").

use vusb_xenstore::{Xenstore, XenstoreWatch, transaction};
use vusb_xlcfg::UsbCtrlSpec;

use super::common::{OpEnv, check_device_model, ctrl_defaults, resolve_ctrl_type, usbback_loaded};
use crate::domain::Domain;
use crate::layout::remove::destroy;
use crate::layout::wait::{STATE_CONNECTED, STATE_INIT_WAIT, wait_state};
use crate::layout::write::{nextid, write_controller};
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, Result, libxl_json};

const ATTEMPTS: u32 = vusb_xenstore::txn::DEFAULT_ATTEMPTS;

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
pub fn usbctrl_attach<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    spec: &UsbCtrlSpec,
) -> Result<Controller> {
    let proto = resolve(env, dom, spec)?;
    attach_resolved(env, dom, proto, spec.model.as_deref())
}

/// Write a new controller with the next free devid, in one transaction.
///
/// The devid is always vusb's choice, so finding its `/libxl` dir already
/// there means a concurrent creation won: C xenstored copies a node into a
/// transaction when it is first touched, so the directory listing behind
/// `nextid` and the existence check can see different moments, and such a
/// transaction could only fail at commit with `EAGAIN`. It is run again
/// (bounded), as a conflict, instead of failing with libxl's "device
/// already exists in xenstore" (which 16 concurrent attaches hit in
/// `crates/cli/tests/xl_concurrency.rs`).
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

/// Create a resolved controller (its `devid` is ignored and allocated);
/// `model` is vusb's `model=` for devicemodel controllers.
pub fn attach_resolved<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    proto: Controller,
    model: Option<&str>,
) -> Result<Controller> {
    // vusb extension: a PV guest's qusb backend is started on demand.
    let started = crate::qusb_backend::ensure(env.xs, env.paths, dom, proto.ctype)?;
    let made = create(env, dom, proto, model);
    if made.is_err()
        && started
        && let Err(e) = crate::qusb_backend::stop_if_unused(env.xs, env.paths, dom)
    {
        log::warn!("{e}");
    }
    made
}

fn create<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    proto: Controller,
    model: Option<&str>,
) -> Result<Controller> {
    let xs = env.xs;
    check_device_model(xs, dom.domid, proto.ctype)?;
    crate::assign::ensure_prefix(xs, vusb_xenstore::TxId::NONE)?;
    let ctrl = create_in_store(xs, dom, &proto)?;
    log::debug!(
        "domain {}: created {} controller {} (usb {} , {} ports)",
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
    if let Err(e) = libxl_json::record_ctrl(env.xs, env.paths, dom.domid, &ctrl) {
        rollback(env, &ctrl);
        return Err(e);
    }
    if let Err(e) = crate::persist::record_ctrl(env.xs, env.paths, dom.domid, &ctrl) {
        log::warn!("vusb's saved configuration not updated: {e}");
    }
    Ok(ctrl)
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
    if let Err(e) = destroy(env.xs, ctrl) {
        log::warn!(
            "domain {}: could not remove controller {} after a failed attach: {e}",
            ctrl.domid,
            ctrl.devid
        );
    }
}
