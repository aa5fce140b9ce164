//! Reading controllers back (libxl's `from_xenstore`, hardened as XSA-178
//! asks): enumeration, type, version and port count come only from the
//! dom0-only `/libxl/<G>/device/vusb/<N>` directory, port contents only
//! from the dom0-owned backend (or `/libxl` for devicemodel). Nothing the
//! guest can write decides what vusb does; the frontend `state` is read only
//! to be displayed by `usb-list`.
//!
//! Differs from libxl: libxl reads `usb-ver`/`num-ports` from the backend
//! dir; vusb reads the `/libxl` copies written in the same transaction
//! (equal by construction, and never writable by a driver domain).

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};

use super::model::{Controller, UsbCtrlType, libxl_vusb_dir};
use crate::error::at;
use crate::{Error, Result};

/// The devids of the guest's controllers, in xenstore directory order
/// (the order xl prints them). Non-numeric entries are skipped.
pub fn list_devids<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId) -> Result<Vec<u32>> {
    let dir = libxl_vusb_dir(domid);
    Ok(xs
        .directory_opt(tx, &dir)
        .map_err(at(&dir))?
        .iter()
        .filter_map(|e| e.parse::<u32>().ok())
        .collect())
}

fn read_num(xs: &(impl Xenstore + ?Sized), tx: TxId, path: &str) -> Result<u32> {
    let v = xs
        .read_opt(tx, path)
        .map_err(at(path))?
        .ok_or_else(|| Error::MissingNode {
            path: path.to_owned(),
        })?;
    v.trim().parse::<u32>().map_err(|_| Error::BadNode {
        path: path.to_owned(),
        value: v,
    })
}

/// Read controller `devid` of `domid`; `Ok(None)` when it does not exist.
/// Three requests (type, usb-ver, num-ports).
pub fn read_controller<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
    devid: u32,
) -> Result<Option<Controller>> {
    let dir = format!("{}/{devid}", libxl_vusb_dir(domid));
    let type_path = format!("{dir}/type");
    let Some(t) = xs.read_opt(tx, &type_path).map_err(at(&type_path))? else {
        return Ok(None);
    };
    let ctype = t.parse::<UsbCtrlType>().map_err(|_| Error::BadNode {
        path: type_path.clone(),
        value: t.clone(),
    })?;
    let version = read_num(xs, tx, &format!("{dir}/usb-ver"))?;
    let ports = read_num(xs, tx, &format!("{dir}/num-ports"))?;
    if ports > 31 {
        return Err(Error::BadNode {
            path: format!("{dir}/num-ports"),
            value: ports.to_string(),
        });
    }
    Ok(Some(Controller {
        domid,
        devid,
        ctype,
        version,
        ports,
    }))
}

/// The busid in port `port` of `c`: `None` for a free port (empty value)
/// or a port node that does not exist.
pub fn read_port<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    c: &Controller,
    port: u32,
) -> Result<Option<String>> {
    let path = c.port_path(port);
    Ok(xs
        .read_opt(tx, &path)
        .map_err(at(&path))?
        .filter(|v| !v.is_empty()))
}

/// The device in port `port` of `c`, parsed (the one place a port node's
/// busid is): `None` for a free port, and, with a warning, for a port node
/// holding something that is not a busid (no device to take back).
pub fn read_port_busid<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    c: &Controller,
    port: u32,
) -> Result<Option<vusb_host::BusId>> {
    let Some(text) = read_port(xs, tx, c, port)? else {
        return Ok(None);
    };
    match vusb_host::BusId::parse(&text) {
        Ok(b) => Ok(Some(b)),
        Err(_) => {
            log::warn!(
                "domain {}: controller {} port {port} holds {text:?}, not a busid",
                c.domid,
                c.devid
            );
            Ok(None)
        }
    }
}

/// The frontend `state` as `usb-list` shows it: libxl's `strtoul(v, 10)`
/// of the guest-written node, `-1` when absent; devicemodel always 0.
pub fn frontend_state<X: Xenstore + ?Sized>(xs: &X, tx: TxId, c: &Controller) -> Result<i64> {
    let Some(fe) = c.frontend_dir() else {
        return Ok(0);
    };
    let path = format!("{fe}/state");
    Ok(match xs.read_opt(tx, &path).map_err(at(&path))? {
        None => -1,
        Some(v) => {
            let digits: String = v
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .take(9)
                .collect();
            digits.parse::<i64>().unwrap_or(0)
        }
    })
}
