//! `vusb usb-recover`: give back to their original drivers the devices
//! whose driver memory (`/libxl/usbback`, [`crate::driver_memory`]) says
//! they were being handed to usbback, but which no domain holds — left so
//! by a process killed midway, or by a failed rollback. An extension: xl
//! has no such command (libxl leaves such devices on usbback forever).
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
//! libxl rolls back a failed attach, through `usbdev-detach` of that
//! controller port (interfaces back on their drivers, port cleared, record
//! released). Do not run `usb-recover` while an attach of the same device is
//! in progress: it cannot tell a live attach from a dead one.

use vusb_host::BusId;
use vusb_host::bind::{self, USBBACK};
use vusb_xenstore::{TxId, Xenstore, XenstoreExt};

use super::common::OpEnv;
use super::usbdev_detach::{DetachTarget, usbdev_detach};
use crate::assign::Assignment;
use crate::layout::UsbCtrlType;
use crate::rebind::{self, Restored};
use crate::{Error, HostPaths, Result, assign, driver_memory};

/// What happened to one remembered device.
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
    /// It is in a port node of an xl-made controller; untouched.
    InPortTable {
        /// The port node naming it.
        path: String,
    },
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

fn xs_err(path: &str) -> impl Fn(vusb_xenstore::Error) -> Error + '_ {
    move |source| Error::XenstorePath {
        path: path.to_owned(),
        source,
    }
}

/// Restore every remembered device that no domain holds.
pub fn usb_recover<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths) -> Result<Vec<Recovered>> {
    let remembered = driver_memory::remembered_devices(xs)?;
    let mut port_table: Option<Vec<(String, String)>> = None;
    let mut out = Vec::new();
    for name in remembered {
        let busid = match BusId::parse(&name) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("ignoring driver memory of {name:?}: {e}");
                continue;
            }
        };
        if let Some(a) = assign::lookup(xs, TxId::NONE, busid.as_str())? {
            if domain_exists(xs, a.domid)? {
                let outcome =
                    if a.ctrl_type == UsbCtrlType::Pv && half_bound(&paths.sysfs_root, &busid) {
                        log::info!(
                            "{busid}: attach to domain {} was interrupted; rolling it back",
                            a.domid
                        );
                        match roll_back_attach(xs, paths, &a) {
                            Ok(()) => Outcome::AttachRolledBack {
                                domid: a.domid,
                                ctrl: a.ctrl,
                                port: a.port,
                            },
                            Err(e) => Outcome::Failed(vusb_host::discover::error_chain(&e)),
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
        let outcome = match rebind::restore(xs, &paths.sysfs_root, &busid) {
            Ok(list) => {
                assign::release(xs, TxId::NONE, busid.as_str())?;
                Outcome::Restored(list)
            }
            Err(e) => Outcome::Failed(vusb_host::discover::error_chain(&e)),
        };
        out.push(Recovered {
            busid: name,
            outcome,
        });
    }
    Ok(out)
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

/// Undo an interrupted attach the way a failed one is undone: detach the
/// record's controller port.
fn roll_back_attach<X: Xenstore + ?Sized>(xs: &X, paths: &HostPaths, a: &Assignment) -> Result<()> {
    let dom = crate::domain::resolve(xs, &a.domid.to_string())?;
    let env = OpEnv::new(xs, paths);
    let target = DetachTarget::Port {
        ctrl: a.ctrl as i32,
        port: a.port as i32,
    };
    usbdev_detach(&env, &dom, &target)?;
    Ok(())
}

fn domain_exists<X: Xenstore + ?Sized>(xs: &X, domid: u32) -> Result<bool> {
    let path = format!("/local/domain/{domid}");
    Ok(xs
        .read_opt(TxId::NONE, &path)
        .map_err(xs_err(&path))?
        .is_some())
}

/// `(port node, busid)` of every non-empty port of every controller of
/// every existing domain (libxl's layout: `/libxl/<d>/device/vusb/<c>`
/// names the backend, whose `port/<i>` holds the busid).
fn xl_port_table<X: Xenstore + ?Sized>(xs: &X) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for dom in xs
        .directory_opt(TxId::NONE, "/local/domain")
        .map_err(xs_err("/local/domain"))?
    {
        let ctrl_dir = format!("/libxl/{dom}/device/vusb");
        for ctrl in xs
            .directory_opt(TxId::NONE, &ctrl_dir)
            .map_err(xs_err(&ctrl_dir))?
        {
            let be_node = format!("{ctrl_dir}/{ctrl}/backend");
            let mut dirs = vec![format!("{ctrl_dir}/{ctrl}/port")];
            if let Some(be) = xs
                .read_opt(TxId::NONE, &be_node)
                .map_err(xs_err(&be_node))?
            {
                dirs.insert(0, format!("{be}/port"));
            }
            for dir in dirs {
                for port in xs.directory_opt(TxId::NONE, &dir).map_err(xs_err(&dir))? {
                    let node = format!("{dir}/{port}");
                    if let Some(v) = xs.read_opt(TxId::NONE, &node).map_err(xs_err(&node))?
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
