//! Creating a controller's xenstore nodes exactly as libxl's generic device
//! add does (reference §4.1–4.3, §4.6), inside the caller's transaction.
//!
//! pv/qusb: the `/libxl` dir gets `frontend`/`backend` pointers; the
//! frontend dir is created owned by the guest with dom0 read access
//! (`n<G>,r0`), the backend dir owned by dom0 with guest read access
//! (`n0,r<G>`); the backend keys are then copied into the `/libxl` dir.
//! devicemodel: only the `/libxl` dir. Keys are written in libxl's order.

use vusb_xenstore::{DomId, Perm, PermKind, TxId, Xenstore, XenstoreExt};

use super::model::{Controller, libxl_vusb_dir};
use crate::error::at;
use crate::{Error, Result};

fn put<X: Xenstore + ?Sized>(xs: &X, tx: TxId, path: &str, value: &str) -> Result<()> {
    xs.write_str(tx, path, value).map_err(at(path))
}

/// The backend keys in libxl's order (also copied into the `/libxl` dir).
fn backend_keys(c: &Controller) -> Vec<(String, String)> {
    let mut keys = Vec::with_capacity(7 + c.ports as usize);
    if c.ctype.backend_kind().is_some() {
        keys.push(("frontend-id".into(), c.domid.to_string()));
        keys.push(("online".into(), "1".into()));
        keys.push(("state".into(), "1".into()));
    }
    keys.push(("type".into(), c.ctype.as_str().into()));
    keys.push(("usb-ver".into(), c.version.to_string()));
    keys.push(("num-ports".into(), c.ports.to_string()));
    keys.push(("port".into(), String::new()));
    for p in 1..=c.ports {
        keys.push((format!("port/{p}"), String::new()));
    }
    keys
}

/// Write every node of a new controller in transaction `tx`. Fails with
/// [`Error::ControllerExists`] when its `/libxl` dir already exists.
pub fn write_controller<X: Xenstore + ?Sized>(xs: &X, tx: TxId, c: &Controller) -> Result<()> {
    let libxl = c.libxl_dir();
    if xs.read_opt(tx, &libxl).map_err(at(&libxl))?.is_some() {
        return Err(Error::ControllerExists {
            domid: c.domid,
            devid: c.devid,
        });
    }
    xs.rm_opt(tx, &libxl).map_err(at(&libxl))?;
    let keys = backend_keys(c);
    if let (Some(fe), Some(be)) = (c.frontend_dir(), c.backend_dir()) {
        put(xs, tx, &format!("{libxl}/frontend"), &fe)?;
        put(xs, tx, &format!("{libxl}/backend"), &be)?;

        let fe_perms = [
            Perm::new(PermKind::None, c.domid),
            Perm::new(PermKind::Read, 0),
        ];
        xs.rm_opt(tx, &fe).map_err(at(&fe))?;
        xs.mkdir(tx, &fe).map_err(at(&fe))?;
        xs.set_perms(tx, &fe, &fe_perms).map_err(at(&fe))?;
        put(xs, tx, &format!("{fe}/backend"), &be)?;
        for (k, v) in [("backend-id", "0"), ("state", "1")] {
            let p = format!("{fe}/{k}");
            put(xs, tx, &p, v)?;
            xs.set_perms(tx, &p, &fe_perms).map_err(at(&p))?;
        }

        let be_perms = [
            Perm::new(PermKind::None, 0),
            Perm::new(PermKind::Read, c.domid),
        ];
        xs.rm_opt(tx, &be).map_err(at(&be))?;
        xs.mkdir(tx, &be).map_err(at(&be))?;
        xs.set_perms(tx, &be, &be_perms).map_err(at(&be))?;
        put(xs, tx, &format!("{be}/frontend"), &fe)?;
        for (k, v) in &keys {
            put(xs, tx, &format!("{be}/{k}"), v)?;
        }
    }
    for (k, v) in &keys {
        put(xs, tx, &format!("{libxl}/{k}"), v)?;
    }
    Ok(())
}

/// The devid of a new controller: the largest numeric entry of
/// `/libxl/<domid>/device/vusb` plus one, or 0 when there is none.
///
/// libxl's `libxl__device_nextid` takes the **last** listed entry plus one
/// (reference X1). That is the same number whenever the listing is in
/// numeric order, as it is unless a controller was removed and a lower
/// devid re-created; then "last + 1" names an existing controller and
/// libxl fails with "device already exists in xenstore". vusb takes the
/// maximum: xl's answer in the usual case, a free devid always.
pub fn nextid<X: Xenstore + ?Sized>(xs: &X, tx: TxId, domid: DomId) -> Result<u32> {
    let dir = libxl_vusb_dir(domid);
    let entries = xs.directory_opt(tx, &dir).map_err(at(&dir))?;
    Ok(entries
        .iter()
        .filter_map(|e| e.parse::<u32>().ok())
        .max()
        .map_or(0, |id| id.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use vusb_xenstore::mem::MemStore;

    use super::*;

    #[test]
    fn nextid_is_max_plus_one_even_when_listed_out_of_order() {
        let store = MemStore::new();
        let xs = store.connect(0);
        assert_eq!(nextid(&xs, TxId::NONE, 1).unwrap(), 0);
        // Created as 0, 2, then 1 (1 was removed and re-created): the
        // store lists them in that order, so libxl's "last + 1" would be 2.
        for id in ["0", "2", "1"] {
            xs.mkdir(TxId::NONE, &format!("/libxl/1/device/vusb/{id}"))
                .unwrap();
        }
        assert_eq!(
            xs.directory(TxId::NONE, "/libxl/1/device/vusb").unwrap(),
            ["0", "2", "1"]
        );
        assert_eq!(nextid(&xs, TxId::NONE, 1).unwrap(), 3);
    }
}
