//! `config-dump`: the USB configuration vusb saved for a guest
//! ([`crate::persist`]), hot-plugged devices included, found by the
//! guest's uuid. The CLI prints it in the `config-show` JSON shape.
//!
//! There is no libxl counterpart that works: `xl list -l` drops hot-plugged
//! usbdevs (reference §8, J1).

use vusb_xenstore::Xenstore;
use vusb_xlcfg::UsbConfig;

use super::common::OpEnv;
use crate::domain::{self, Domain};
use crate::{Error, Result, persist};

/// The saved configuration of `dom`; [`Error::NoSavedConfig`] when vusb
/// never recorded anything for it.
pub fn config_dump<X: Xenstore + ?Sized>(env: &OpEnv<'_, X>, dom: &Domain) -> Result<UsbConfig> {
    match persist::load_domain(env.xs, env.paths, dom.domid)? {
        Some(saved) => Ok(saved.config),
        None => Err(Error::NoSavedConfig {
            domid: dom.domid,
            uuid: domain::uuid(env.xs, dom.domid)?,
        }),
    }
}
