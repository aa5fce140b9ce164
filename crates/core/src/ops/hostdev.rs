//! The host side of usbdev operations: which host device the user named
//! (xl's `hostbus=`/`hostaddr=` and vusb's `busid=`, `vendor=`/`product=`/
//! `serial=`, `portpath=`, `physport=`, narrowed by `with-interface=` /
//! `without-interface=`), whether it may be given away, and whether the
//! chosen controller can carry it.
//!
//! Lookup and assignability come from `vusb-host`; the "assigned to a
//! domain" refusal comes from [`crate::assign`], not from a scan.
//!
//! A device not found, several found (a subtree, a vendor:product), or
//! none passing the interface filter is libxl's "USB device is not
//! assignable." with the host crate's reason in `why` (which devices a
//! subtree holds, why each failed the filter).

use vusb_host::{BusId, InterfaceFilter, InterfacePattern, Selector, UsbDevice};
use vusb_xlcfg::{IntfPatternSpec, UsbDevSpec};

use crate::error::Unassignable;
use crate::layout::{Controller, UsbCtrlType};
use crate::{Error, HostPaths, Result};

fn host_err(e: vusb_host::Error) -> Error {
    Error::Host(Box::new(e))
}

fn unassignable(busid: Option<String>, why: Unassignable) -> Error {
    Error::NotAssignable {
        busid,
        why: Box::new(why),
    }
}

/// Refuse a spec that names the device in two ways at once (`busid=`
/// with `hostbus=`/`hostaddr=`...) instead of silently using one;
/// `portpath=` may come with `hostbus=` (the bus its path starts from).
/// For what a user typed: vusb's own saved specs carry several identities
/// on purpose, and [`selector`] picks the most precise.
pub fn single_identity(spec: &UsbDevSpec) -> Result<()> {
    let mut given = Vec::new();
    if spec.busid.is_some() {
        given.push("busid=");
    }
    if spec.portpath.is_some() {
        given.push("portpath=");
    }
    if spec.physport.is_some() {
        given.push("physport=");
    }
    if spec.vendor.is_some() || spec.product.is_some() || spec.serial.is_some() {
        given.push("vendor=/product=");
    }
    let bus_addr = if spec.portpath.is_some() {
        spec.hostaddr.is_some()
    } else {
        spec.hostbus.is_some() || spec.hostaddr.is_some()
    };
    if bus_addr {
        given.push("hostbus=/hostaddr=");
    }
    if given.len() > 1 {
        return Err(unassignable(
            None,
            Unassignable::ConflictingSelectors { given },
        ));
    }
    Ok(())
}

/// The selector the spec names. xl's `hostbus`/`hostaddr` (absent = 0, as
/// libxl's init leaves them) unless an extension key is given.
pub fn selector(spec: &UsbDevSpec) -> Result<Selector> {
    if let Some(b) = &spec.busid {
        return BusId::parse(b)
            .map(Selector::BusId)
            .map_err(|e| unassignable(None, Unassignable::Lookup(e)));
    }
    if let Some(p) = &spec.physport {
        return Ok(Selector::PhysPort {
            port: p.port.clone(),
            below: p.below,
        });
    }
    if let Some(p) = &spec.portpath {
        // `portpath=` names the hub port chain below `hostbus`'s root hub.
        return Ok(match spec.hostbus {
            Some(bus) if !p.contains(['-', '/']) => Selector::PortPath(format!("{bus}-{p}")),
            _ => Selector::PortPath(p.clone()),
        });
    }
    if spec.vendor.is_some() || spec.product.is_some() || spec.serial.is_some() {
        let (Some(vendor), Some(product)) = (spec.vendor, spec.product) else {
            let (given, missing) = match (spec.vendor, spec.product) {
                (Some(_), None) => ("vendor=", "product="),
                (None, Some(_)) => ("product=", "vendor="),
                _ => ("serial=", "vendor= and product="),
            };
            return Err(unassignable(
                None,
                Unassignable::IncompleteSelector { given, missing },
            ));
        };
        return Ok(Selector::VidPid {
            vendor,
            product,
            serial: spec.serial.clone(),
        });
    }
    Ok(Selector::BusAddr {
        bus: spec.hostbus.unwrap_or(0),
        addr: spec.hostaddr.unwrap_or(0),
    })
}

fn pattern(p: &IntfPatternSpec) -> InterfacePattern {
    InterfacePattern {
        class: p.class,
        subclass: p.subclass,
        protocol: p.protocol,
    }
}

/// The interface filter the spec names (`with-interface=`,
/// `without-interface=`); empty when neither is given.
pub fn filter(spec: &UsbDevSpec) -> InterfaceFilter {
    InterfaceFilter {
        only: spec
            .with_interface
            .as_ref()
            .map(|v| v.iter().map(pattern).collect()),
        exclude: spec
            .without_interface
            .iter()
            .flatten()
            .map(pattern)
            .collect(),
    }
}

/// Find the device and check that the host can give it away. Any failure
/// to find it is libxl's "USB device is not assignable." (golden pv/16);
/// the reason is logged. `force` lets a device the host is using through
/// (with a warning), never a hub.
pub fn select_assignable(paths: &HostPaths, spec: &UsbDevSpec, force: bool) -> Result<UsbDevice> {
    let sel = selector(spec)?;
    // Only what the selector needs is read (not every device's every
    // attribute): an attach costs the same on a host with many devices.
    let dev = match vusb_host::lookup::locate_with(&paths.sysfs_root, &sel, &filter(spec)) {
        Ok(d) => d,
        Err(e) => {
            log::info!("{}", vusb_host::discover::error_chain(&e));
            return Err(unassignable(None, Unassignable::Lookup(e)));
        }
    };
    let uses = match vusb_host::usage::block_uses(&paths.sysfs_root, &paths.proc_root) {
        Ok(u) => u,
        Err(e) => {
            log::warn!(
                "cannot tell which block devices the host uses: {}",
                vusb_host::discover::error_chain(&e)
            );
            Vec::new()
        }
    };
    // The whole device list only matters for a hub (is a device below it
    // in use?); hubs are refused either way, the list picks the reason.
    let devices = if dev.is_hub() {
        vusb_host::discover(&paths.sysfs_root).map_err(host_err)?
    } else {
        Vec::new()
    };
    if let Some(refusal) = vusb_host::assignable::check(&dev, &devices, &uses, force) {
        log::info!("{} is not assignable: {refusal}", dev.busid);
        return Err(unassignable(
            Some(dev.busid.to_string()),
            Unassignable::Refused(refusal),
        ));
    }
    Ok(dev)
}

/// How long an attach waits for udevd's announcement of a device at most
/// ([`super::common::Timeouts::udev_wait`]; the daemon waits less and
/// retries instead, so that its other work is not held up).
pub const UDEV_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How an attach waits for udevd's announcement ([`vusb_host::udev`]):
/// announced at least 100 ms ago; an idle udevd without an entry after 1 s
/// (or after `max`, when shorter) means the device predates udevd; at most
/// `max`.
pub fn udev_pace(max: std::time::Duration) -> vusb_host::udev::Pace {
    vusb_host::udev::Pace {
        settle: std::time::Duration::from_millis(100),
        idle_after: std::time::Duration::from_secs(1).min(max),
        max,
    }
}

/// Wait until udevd has announced `dev` ([`udev_pace`]`(max)`): the QEMU
/// that serves a qusb or devicemodel port opens host devices through
/// libusb, which knows only the devices udevd announced, and QEMU 7.2's
/// xen-usb backend aborts when the guest talks to a port whose device it
/// could not open ([`vusb_host::udev`]). Nothing to wait for without
/// udevd, in a test tree ([`HostPaths::udev_dir`]) or in a dry run.
pub fn await_udev(paths: &HostPaths, dev: &UsbDevice, max: std::time::Duration) -> Result<()> {
    use vusb_host::udev::{Announcement, wait_announced};
    let Some(dir) = paths.udev_dir() else {
        return Ok(());
    };
    if paths.plan().is_some() {
        return Ok(());
    }
    match wait_announced(&dir, dev.busnum, dev.devnum, udev_pace(max)) {
        Ok(Announcement::Announced { after }) if after.as_millis() > 0 => {
            log::debug!(
                "{}: announced by udevd after {} ms",
                dev.busid,
                after.as_millis()
            );
            Ok(())
        }
        Ok(Announcement::Unknown) => {
            log::debug!(
                "{}: udevd has no entry for it and nothing queued (it predates udevd)",
                dev.busid
            );
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(waited) => Err(Error::NotAnnouncedByUdev {
            busid: dev.busid.clone(),
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// Whether `ctrl` can carry `dev`, checked before anything is written:
/// isochronous endpoints on a pv or qusb controller are refused (PV USB
/// has no isochronous transfers; QEMU's qusb backend rejects them), unless
/// `force` (then a warning).
pub fn check_controller(dev: &UsbDevice, ctrl: &Controller, force: bool) -> Result<()> {
    if !matches!(ctrl.ctype, UsbCtrlType::Pv | UsbCtrlType::Qusb) {
        return Ok(());
    }
    let Some(ep) = dev.isochronous_endpoint() else {
        return Ok(());
    };
    if !force {
        return Err(Error::IsochronousOnPvUsb {
            busid: dev.busid.clone(),
            ctype: ctrl.ctype,
            endpoint: ep.to_string(),
        });
    }
    log::warn!(
        "{}: isochronous {ep} on a {} controller; attaching anyway (--force): streaming will fail in the guest",
        dev.busid,
        ctrl.ctype
    );
    Ok(())
}

/// A notice for the user when the device will work slower than it can: a
/// SuperSpeed device on a USB2 (or USB1) controller.
pub fn speed_notice(dev: &UsbDevice, ctrl: &Controller) -> Option<String> {
    if !dev.is_superspeed() || ctrl.version >= 3 {
        return None;
    }
    let speed = if ctrl.version == 1 {
        "full speed (12 Mbit/s)"
    } else {
        "high speed (480 Mbit/s)"
    };
    Some(format!(
        "{} is a SuperSpeed device; on USB{} controller {} of domain {} it will run at {speed}",
        dev.busid, ctrl.version, ctrl.devid, ctrl.domid
    ))
}

/// The device at `busid` if it is still in sysfs.
pub fn find_busid(paths: &HostPaths, busid: &BusId) -> Option<UsbDevice> {
    vusb_host::discover::read_one(&paths.sysfs_root, busid).ok()
}
