//! `config-apply`: give a running guest everything a configuration
//! declares (`vusb config-apply <dom> FILE`), or what vusb saved for it
//! (`--saved`, [`crate::persist`]), in xl's creation order: controllers
//! first, then devices (libxl's `libxl__add_usbctrls` then
//! `libxl__add_usbdevs`, reference §7.5).
//!
//! - **Checked before anything is done**: every device is found on the
//!   host, has a host-device type, and names a controller the
//!   configuration defines or the guest has. A failure here changes
//!   nothing.
//! - **Idempotent**: a controller whose devid the guest already has, and a
//!   device already attached to this guest, are skipped, so running it
//!   twice changes nothing.
//! - **All or nothing**: if a step fails, what this run attached is
//!   detached and what it created is removed, in reverse order, and the
//!   error names the step.
//! - Devids: the ops allocate devids as libxl does (last + 1). When a new
//!   controller gets another devid than the configuration's (the guest
//!   already had others), the configuration's `controller=` references are
//!   mapped to it.
//! - The legacy HVM options (`usb=`, `usbversion=`, `usbdevice=`) are QEMU
//!   command-line options: they cannot be applied to a running guest and
//!   are ignored with a warning.
//! - Afterwards the saved configuration records what the guest now has
//!   from this configuration (for `--saved` it is replaced by it, so
//!   remapped devids do not leave stale entries).

use std::collections::HashMap;

use vusb_host::BusId;
use vusb_xenstore::{TxId, Xenstore, XenstoreWatch};
use vusb_xlcfg::{DevKind, UsbConfig, UsbDevSpec};

use super::attach::attach;
use super::common::OpEnv;
use super::controller;
use super::teardown::{self, Why};
use crate::domain::Domain;
use crate::layout::Controller;
use crate::layout::read::read_controller;
use crate::persist::{self, DevRecord};
use crate::{Error, Result, assign};

/// What `config-apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Controllers created (devids), in order.
    pub created_ctrls: Vec<u32>,
    /// Controllers the guest already had (devids).
    pub present_ctrls: Vec<u32>,
    /// Devices attached: (controller, port, busid).
    pub attached: Vec<(u32, u32, BusId)>,
    /// Devices already attached to the guest (busids).
    pub present_devs: Vec<BusId>,
}

/// One thing done, to undo on failure.
enum Done {
    Ctrl(u32),
    Dev { ctrl: u32, port: u32 },
}

/// A device of the configuration, found on the host.
struct PlannedDev {
    index: usize,
    spec: UsbDevSpec,
    busid: BusId,
    vendor: u16,
    product: u16,
    serial: Option<String>,
}

fn step(setting: &'static str, index: usize, spec: String) -> impl FnOnce(Error) -> Error {
    move |e| Error::ConfigApply {
        setting,
        index,
        spec,
        source: Box::new(e),
    }
}

/// Apply `cfg` to `dom` (see the module docs).
pub fn config_apply<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    cfg: &UsbConfig,
) -> Result<Applied> {
    let (applied, ctrls, devs) = apply(env, dom, cfg)?;
    let recorded = persist::update(env.xs, env.paths, dom.domid, |saved| {
        for c in &ctrls {
            persist::put_ctrl(saved, c);
        }
        for d in &devs {
            persist::put_dev(saved, d);
        }
    });
    if let Err(e) = recorded {
        log::warn!("domain {}: saved configuration not updated: {e}", dom.domid);
    }
    Ok(applied)
}

/// Apply what was saved for the guest (found by its uuid, so a guest
/// re-created under a new domid gets its devices back); the saved
/// configuration is then replaced by what the guest now has from it.
pub fn config_apply_saved<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
) -> Result<Applied> {
    let Some(saved) = persist::load_domain(env.xs, env.paths, dom.domid)? else {
        return Err(Error::NoSavedConfig {
            domid: dom.domid,
            uuid: crate::domain::uuid(env.xs, dom.domid)?,
        });
    };
    // A saved device names its physical port (busid=) and, for the
    // record, the address and identity it had: it is found by the port.
    let mut config = saved.config.clone();
    for d in &mut config.devs {
        if d.spec.busid.is_some() {
            d.spec.hostbus = None;
            d.spec.hostaddr = None;
            d.spec.vendor = None;
            d.spec.product = None;
            d.spec.serial = None;
        }
    }
    let (applied, ctrls, devs) = apply(env, dom, &config)?;
    let replaced = persist::update(env.xs, env.paths, dom.domid, |saved| {
        saved.ctrls.clear();
        saved.devs.clear();
        for c in &ctrls {
            persist::put_ctrl(saved, c);
        }
        for d in &devs {
            persist::put_dev(saved, d);
        }
    });
    if let Err(e) = replaced {
        log::warn!("domain {}: saved configuration not updated: {e}", dom.domid);
    }
    Ok(applied)
}

type ApplyResult = (Applied, Vec<Controller>, Vec<DevRecord>);

fn apply<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    cfg: &UsbConfig,
) -> Result<ApplyResult> {
    if !cfg.legacy.is_empty() {
        log::warn!(
            "domain {}: usb=/usbversion=/usbdevice= are device-model command-line options; \
             they cannot be applied to a running guest and are ignored",
            dom.domid
        );
    }
    let planned = plan(env, dom, cfg)?;
    let mut done = Vec::new();
    match run(env, dom, cfg, &planned, &mut done) {
        Ok(r) => Ok(r),
        Err(e) => {
            undo(env, dom, &done);
            Err(e)
        }
    }
}

/// The checks that come before any change.
fn plan<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    cfg: &UsbConfig,
) -> Result<Vec<PlannedDev>> {
    let defined: Vec<i32> = cfg.ctrls.iter().map(|c| c.devid).collect();
    let devices = if cfg.devs.is_empty() {
        Vec::new()
    } else {
        vusb_host::discover(&env.paths.sysfs_root).map_err(|e| Error::Host(Box::new(e)))?
    };
    let mut planned = Vec::new();
    for (index, d) in cfg.devs.iter().enumerate() {
        if d.spec.kind != DevKind::HostDev {
            return Err(Error::UnsupportedDeviceType {
                index,
                kind: d.spec.kind.as_str().to_owned(),
            });
        }
        if let Some(c) = d.spec.controller {
            let in_guest = read_controller(env.xs, TxId::NONE, dom.domid, c)?.is_some();
            let in_file = defined.iter().any(|&d| i64::from(d) == i64::from(c));
            if !in_file && !in_guest {
                return Err(Error::UndefinedController {
                    index,
                    ctrl: i64::from(c),
                });
            }
        }
        let sel =
            super::hostdev::selector(&d.spec).map_err(step("usbdev", index, d.spec.to_string()))?;
        let filter = super::hostdev::filter(&d.spec);
        let dev = vusb_host::lookup::find_with(&devices, &sel, &filter).map_err(|e| {
            log::info!("usbdev {index}: {}", vusb_host::discover::error_chain(&e));
            step("usbdev", index, d.spec.to_string())(Error::NotAssignable {
                busid: None,
                why: Box::new(crate::error::Unassignable::Lookup(e)),
            })
        })?;
        planned.push(PlannedDev {
            index,
            spec: d.spec.clone(),
            busid: dev.busid.clone(),
            vendor: dev.vendor_id,
            product: dev.product_id,
            serial: dev.serial.clone(),
        });
    }
    Ok(planned)
}

fn run<X: Xenstore + XenstoreWatch + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    cfg: &UsbConfig,
    planned: &[PlannedDev],
    done: &mut Vec<Done>,
) -> Result<ApplyResult> {
    let mut applied = Applied::default();
    let mut ctrls = Vec::new();
    let mut devid_map: HashMap<i32, u32> = HashMap::new();
    for (cindex, c) in cfg.ctrls.iter().enumerate() {
        let existing = match u32::try_from(c.devid) {
            Ok(devid) => read_controller(env.xs, TxId::NONE, dom.domid, devid)?,
            Err(_) => None,
        };
        let ctrl = match existing {
            Some(ctrl) => {
                log::info!(
                    "domain {}: controller {} already there",
                    dom.domid,
                    ctrl.devid
                );
                if differs(&c.spec, &ctrl) {
                    log::warn!(
                        "domain {}: controller {} is {} v{} with {} ports, not `{}'; kept as it is",
                        dom.domid,
                        ctrl.devid,
                        ctrl.ctype,
                        ctrl.version,
                        ctrl.ports,
                        c.spec
                    );
                }
                applied.present_ctrls.push(ctrl.devid);
                ctrl
            }
            None => {
                let ctrl = controller::create(env, dom, &c.spec, None).map_err(step(
                    "usbctrl",
                    cindex,
                    c.spec.to_string(),
                ))?;
                done.push(Done::Ctrl(ctrl.devid));
                applied.created_ctrls.push(ctrl.devid);
                if i64::from(ctrl.devid) != i64::from(c.devid) {
                    log::info!(
                        "domain {}: usbctrl {} created as controller {}",
                        dom.domid,
                        c.devid,
                        ctrl.devid
                    );
                }
                ctrl
            }
        };
        devid_map.insert(c.devid, ctrl.devid);
        ctrls.push(ctrl);
    }
    let mut devs = Vec::new();
    for p in planned {
        if let Some(rec) = assign::lookup(env.xs, TxId::NONE, &p.busid)?
            && rec.domid == dom.domid
        {
            log::info!("domain {}: {} already attached", dom.domid, p.busid);
            applied.present_devs.push(p.busid.clone());
            devs.push(record(p, rec.ctrl, rec.port, rec.hostbus, rec.hostaddr));
            continue;
        }
        let mut spec = p.spec.clone();
        // The device found in the planning step, by its physical port (and
        // by nothing else: two selectors at once are refused).
        spec.busid = Some(p.busid.to_string());
        spec.hostbus = None;
        spec.hostaddr = None;
        spec.portpath = None;
        spec.physport = None;
        spec.vendor = None;
        spec.product = None;
        spec.serial = None;
        if let Some(c) = spec.controller.and_then(|c| i32::try_from(c).ok())
            && let Some(&actual) = devid_map.get(&c)
        {
            spec.controller = Some(actual);
        }
        let a = attach(env, dom, &spec).map_err(step("usbdev", p.index, p.spec.to_string()))?;
        if let Some(c) = a.created_ctrl {
            done.push(Done::Ctrl(c));
            applied.created_ctrls.push(c);
            if let Some(ctrl) = read_controller(env.xs, TxId::NONE, dom.domid, c)? {
                ctrls.push(ctrl);
            }
        }
        done.push(Done::Dev {
            ctrl: a.ctrl,
            port: a.port,
        });
        let (bus, addr) = match assign::lookup(env.xs, TxId::NONE, &p.busid)? {
            Some(rec) => (rec.hostbus, rec.hostaddr),
            None => (0, 0),
        };
        devs.push(record(p, a.ctrl, a.port, bus, addr));
        applied.attached.push((a.ctrl, a.port, p.busid.clone()));
    }
    Ok((applied, ctrls, devs))
}

/// Whether an existing controller contradicts what the spec asks for
/// (fields left at their default match anything).
fn differs(spec: &vusb_xlcfg::UsbCtrlSpec, ctrl: &Controller) -> bool {
    let want = persist::ctrl_spec(ctrl);
    (spec.kind != vusb_xlcfg::CtrlKind::Auto && spec.kind != want.kind)
        || (spec.version_or_zero() != 0 && spec.version != want.version)
        || (spec.ports_or_zero() != 0 && spec.ports != want.ports)
}

fn record(p: &PlannedDev, ctrl: u32, port: u32, hostbus: u8, hostaddr: u8) -> DevRecord {
    DevRecord {
        ctrl,
        port,
        busid: p.busid.to_string(),
        hostbus,
        hostaddr,
        vendor: Some(p.vendor),
        product: Some(p.product),
        serial: p.serial.clone(),
    }
}

/// Reverses what this run did, newest first; failures are logged.
fn undo<X: Xenstore + XenstoreWatch + ?Sized>(env: &OpEnv<'_, X>, dom: &Domain, done: &[Done]) {
    for d in done.iter().rev() {
        let result = match d {
            Done::Dev { ctrl, port } => undo_dev(env, dom, *ctrl, *port),
            Done::Ctrl(devid) => match read_controller(env.xs, TxId::NONE, dom.domid, *devid) {
                Ok(Some(c)) => controller::remove(env, dom, &c, Why::Detach).map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => log::debug!("domain {}: undid a step of config-apply", dom.domid),
            Err(e) => log::warn!(
                "domain {}: could not undo a step of config-apply: {e}",
                dom.domid
            ),
        }
    }
}

/// Detach what this run attached at `ctrl`/`port` (if it is still there).
fn undo_dev<X: Xenstore + ?Sized>(
    env: &OpEnv<'_, X>,
    dom: &Domain,
    ctrl: u32,
    port: u32,
) -> Result<()> {
    let Some(c) = read_controller(env.xs, TxId::NONE, dom.domid, ctrl)? else {
        return Ok(());
    };
    match crate::layout::read::read_port_busid(env.xs, TxId::NONE, &c, port)? {
        Some(busid) => teardown::detach_host_locked(env, dom, &c, port, &busid, Why::Detach),
        None => Ok(()),
    }
}
