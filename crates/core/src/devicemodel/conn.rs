//! One QMP connection to a device model and the four operations libxl
//! performs over it, with honest completion for removals.
//!
//! libxl treats the `device_del` reply as completion (reference §6.2, bug
//! Q1). QEMU 7.2 only *requests* the unplug of a PCI controller: it
//! completes when the guest acknowledges the ACPI eject, and xHCI never
//! emits `DEVICE_DELETED` even then. So [`DmConn::remove_controller`] polls
//! `qom-list /machine/peripheral` until the id is gone and otherwise says
//! [`Removal::GuestDidNotRelease`]. USB devices go at once and their
//! `DEVICE_DELETED` follows about 60 ms later; [`DmConn::remove_device`]
//! waits for it, as backends stay busy until then.
//!
//! In a dry run ([`DmConn::set_plan`], [`crate::dryrun`]) `device_add` and
//! `device_del` are recorded instead of sent and answered as a success;
//! queries still reach QEMU (they change nothing).

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use vusb_qmp::{Qmp, Stream};

use super::device::DmDevice;
use super::error::DmError;
use super::model::{ArgStyle, ControllerModel, controller_id};
use crate::dryrun::{Effect, Plan};

/// What a removal achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The device is gone from QEMU.
    Removed,
    /// QEMU had no device with that id (nothing to do).
    NotPresent,
    /// QEMU accepted `device_del`, but the device is still there when the
    /// timeout expired: the guest has not released it (no OS, or it
    /// refused). It goes when the guest ejects it or the VM resets.
    GuestDidNotRelease,
}

/// How often a pending controller unplug is re-checked.
const POLL: Duration = Duration::from_millis(20);

/// A connection to one QEMU, used by devicemodel controllers of Xen HVM
/// guests and by plain QEMU/KVM VMs alike.
#[derive(Debug)]
pub struct DmConn<S: Stream = UnixStream> {
    qmp: Qmp<S>,
    style: ArgStyle,
    /// A dry run: commands that change the VM are recorded here, not sent
    /// (queries still are).
    plan: Option<Plan>,
}

impl DmConn<UnixStream> {
    /// Connect to `path` and negotiate; `timeout` bounds each QMP command.
    pub fn connect(path: &Path, timeout: Duration) -> Result<DmConn<UnixStream>, DmError> {
        let qmp = Qmp::connect(path, timeout).map_err(|source| DmError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(DmConn::from_qmp(qmp))
    }
}

impl<S: Stream> DmConn<S> {
    /// Use an already negotiated QMP connection.
    pub fn from_qmp(qmp: Qmp<S>) -> DmConn<S> {
        DmConn {
            qmp,
            style: ArgStyle::default(),
            plan: None,
        }
    }

    /// Make this a dry run's connection when `plan` is `Some`: `device_add`
    /// and `device_del` are recorded and answered as QEMU would answer a
    /// success; a removal's wait is recorded and assumed to end well.
    pub fn set_plan(&mut self, plan: Option<Plan>) {
        self.plan = plan;
    }

    /// Record `device_add` in a dry run (`true`), or do nothing (`false`).
    fn planned_add(&self, args: &vusb_qmp::DeviceAdd) -> bool {
        let Some(plan) = &self.plan else {
            return false;
        };
        plan.record(Effect::Qmp {
            command: "device_add".into(),
            arguments: serde_json::Value::Object(args.arguments().clone()),
        });
        true
    }

    /// In a dry run, the removal of `id` as planned: `NotPresent` when QEMU
    /// has no such device (asked: a query changes nothing), else
    /// `device_del` and the wait for `what`, recorded.
    fn planned_removal(
        &mut self,
        id: &str,
        what: std::fmt::Arguments<'_>,
        timeout: Duration,
    ) -> Option<Result<Removal, vusb_qmp::Error>> {
        let plan = self.plan.clone()?;
        Some(match self.present_or_unknown(id) {
            Ok(false) => Ok(Removal::NotPresent),
            Ok(true) => {
                plan.record(Effect::Qmp {
                    command: "device_del".into(),
                    arguments: serde_json::json!({ "id": id }),
                });
                plan.wait(what, timeout);
                Ok(Removal::Removed)
            }
            Err(e) => Err(e),
        })
    }

    /// How numbers are typed in `device_add` (default [`ArgStyle::Typed`]).
    pub fn set_arg_style(&mut self, style: ArgStyle) {
        self.style = style;
    }

    /// The QMP connection, for queries.
    pub fn qmp(&mut self) -> &mut Qmp<S> {
        &mut self.qmp
    }

    /// `device_add` the controller `xenusb-<devid>`; returns its QOM id.
    pub fn add_controller(
        &mut self,
        devid: u32,
        model: &ControllerModel,
    ) -> Result<String, DmError> {
        let args = model.device_add(devid, self.style);
        let id = controller_id(devid);
        log::debug!(
            "adding controller {id}: {} with {} ports",
            model.driver,
            model.ports
        );
        if self.planned_add(&args) {
            return Ok(id);
        }
        self.qmp
            .device_add(&args)
            .map_err(|source| DmError::AddController {
                id: id.clone(),
                source,
            })?;
        Ok(id)
    }

    /// [`DmConn::add_controller`] onto a given PCI bus (a cold-plugged
    /// `pcie-root-port` of a q35 VM, whose `pcie.0` cannot hot-plug).
    pub fn add_controller_on_bus(
        &mut self,
        devid: u32,
        model: &ControllerModel,
        bus: &str,
    ) -> Result<String, DmError> {
        let args = model.device_add(devid, self.style).arg("bus", bus);
        let id = controller_id(devid);
        log::debug!("adding controller {id}: {} on {bus}", model.driver);
        if self.planned_add(&args) {
            return Ok(id);
        }
        self.qmp
            .device_add(&args)
            .map_err(|source| DmError::AddController {
                id: id.clone(),
                source,
            })?;
        Ok(id)
    }

    /// `device_del` the controller, then wait up to `timeout` for it to
    /// leave `/machine/peripheral`.
    pub fn remove_controller(&mut self, devid: u32, timeout: Duration) -> Result<Removal, DmError> {
        let id = controller_id(devid);
        let err = |source| DmError::RemoveController {
            id: id.clone(),
            source,
        };
        let what = format_args!("the guest to release controller {id} (QEMU's DEVICE_DELETED)");
        if let Some(r) = self.planned_removal(&id, what, timeout) {
            return r.map_err(err);
        }
        match self.qmp.device_del(&id) {
            Ok(()) => {}
            Err(e) if e.is_device_not_found() => return Ok(Removal::NotPresent),
            // A paused VM answers a repeated request this way: still pending.
            Err(e)
                if e.qemu_desc()
                    .is_some_and(|d| d.contains("already in the process of unplug")) =>
            {
                log::debug!("{id}: unplug already pending");
            }
            Err(e) => return Err(err(e)),
        }
        let deadline = Instant::now() + timeout;
        let _wait = crate::progress::waiting(
            format_args!("the guest to release controller {id} (QEMU's DEVICE_DELETED)"),
            timeout,
        );
        loop {
            if !self.present_or_unknown(&id).map_err(err)? {
                return Ok(Removal::Removed);
            }
            let now = Instant::now();
            if now >= deadline {
                log::debug!("{id}: still present after {timeout:?}");
                return Ok(Removal::GuestDidNotRelease);
            }
            let _ = self.qmp.wait_event(POLL.min(deadline - now), |ev| {
                ev.deleted_device() == Some(id.as_str())
            });
        }
    }

    /// `device_add` a USB device on `ctrl`'s `port`; returns the QOM id,
    /// which the caller keeps to remove it later.
    pub fn add_device(
        &mut self,
        ctrl: u32,
        port: u32,
        device: &DmDevice,
    ) -> Result<String, DmError> {
        let args = device.device_add(ctrl, port, self.style);
        let id = device.qom_id(ctrl, port);
        log::debug!(
            "adding {id} ({}) on xenusb-{ctrl}.0 port {port}",
            device.qemu_driver()
        );
        if self.planned_add(&args) {
            return Ok(id);
        }
        self.qmp
            .device_add(&args)
            .map_err(|source| DmError::AddDevice {
                id: id.clone(),
                source,
            })?;
        Ok(id)
    }

    /// `device_del` a USB device and wait up to `timeout` for its
    /// `DEVICE_DELETED`.
    pub fn remove_device(&mut self, id: &str, timeout: Duration) -> Result<Removal, DmError> {
        let err = |source| DmError::RemoveDevice {
            id: id.to_string(),
            source,
        };
        let what = format_args!("QEMU's DEVICE_DELETED for {id}");
        if let Some(r) = self.planned_removal(id, what, timeout) {
            return r.map_err(err);
        }
        match self.qmp.device_del(id) {
            Ok(()) => {}
            Err(e) if e.is_device_not_found() => return Ok(Removal::NotPresent),
            Err(e) => return Err(err(e)),
        }
        let wait =
            crate::progress::waiting(format_args!("QEMU's DEVICE_DELETED for {id}"), timeout);
        let deleted = self.qmp.wait_device_deleted(id, timeout).map_err(err)?;
        drop(wait);
        if deleted {
            return Ok(Removal::Removed);
        }
        // No event in time: trust QEMU's device tree over the missing event.
        if self.present_or_unknown(id).map_err(err)? {
            Ok(Removal::GuestDidNotRelease)
        } else {
            Ok(Removal::Removed)
        }
    }

    /// [`DmConn::is_present`], except that a QMP server without `qom-list`
    /// (not a real QEMU: every QEMU since 1.2 has it) counts as "gone", with
    /// a warning: the removal cannot be verified, as libxl never does.
    fn present_or_unknown(&mut self, id: &str) -> Result<bool, vusb_qmp::Error> {
        match self.is_present(id) {
            Err(e) if e.qemu_class() == Some("CommandNotFound") => {
                log::warn!("cannot verify the removal of {id}: the QMP server has no qom-list");
                Ok(false)
            }
            other => other,
        }
    }

    /// Is a device with this id in `/machine/peripheral`?
    pub fn is_present(&mut self, id: &str) -> Result<bool, vusb_qmp::Error> {
        Ok(self.qmp.peripherals()?.iter().any(|p| p.id == id))
    }
}
