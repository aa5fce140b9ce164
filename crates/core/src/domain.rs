//! Naming a domain: by domid or by name, as `xl` does, plus its type and
//! uuid as libxl records them.
//!
//! - A domid is an all-digit argument; a name is looked up over
//!   `/local/domain/*/name` (xl's `find_domain`).
//! - **Differs from xl**: xl takes an all-digit argument as a domid without
//!   checking that the domain exists (so `xl usb-list 99` prints nothing and
//!   succeeds). vusb checks `/local/domain/<domid>` and fails with
//!   "<arg> is an invalid domain identifier", exit 1, so a typo never
//!   writes nodes for a domain that does not exist.
//! - The type is read from `/libxl/<domid>/type` (`pv`, `pvh`, `hvm`, as
//!   libxl writes it), never from anything the guest can write (XSA-178).
//! - The uuid comes from `/local/domain/<domid>/vm` (`/vm/<uuid>`), needed
//!   only for libxl's stored configuration file names.

use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};

use crate::{Error, Result};

/// A guest type as libxl writes it in `/libxl/<domid>/type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainType {
    /// Paravirtualised.
    Pv,
    /// PVH.
    Pvh,
    /// Fully virtualised (has a QEMU device model).
    Hvm,
}

impl DomainType {
    /// libxl's string.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Pv => "pv",
            DomainType::Pvh => "pvh",
            DomainType::Hvm => "hvm",
        }
    }

    fn parse(s: &str) -> Option<DomainType> {
        match s {
            "pv" => Some(DomainType::Pv),
            "pvh" => Some(DomainType::Pvh),
            "hvm" => Some(DomainType::Hvm),
            _ => None,
        }
    }
}

/// A resolved, existing domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Its domid.
    pub domid: DomId,
    /// The argument the user gave (for messages).
    pub arg: String,
}

impl Domain {
    /// `/local/domain/<domid>`.
    pub fn home(&self) -> String {
        format!("/local/domain/{}", self.domid)
    }
}

/// Resolve a domid or domain name (`xl`'s `find_domain`, plus an existence
/// check for domids). Costs one request for a domid.
pub fn resolve<X: Xenstore + ?Sized>(xs: &X, arg: &str) -> Result<Domain> {
    let unknown = || Error::UnknownDomain {
        arg: arg.to_owned(),
    };
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        let domid: DomId = arg.parse().map_err(|_| unknown())?;
        let home = format!("/local/domain/{domid}");
        // One request: the name node exists for every domain xl creates; a
        // domain without one is still accepted if its home exists.
        if xs.read_opt(TxId::NONE, &format!("{home}/name"))?.is_some()
            || xs.read_opt(TxId::NONE, &home)?.is_some()
        {
            return Ok(Domain {
                domid,
                arg: arg.to_owned(),
            });
        }
        return Err(unknown());
    }
    for entry in xs.directory_opt(TxId::NONE, "/local/domain")? {
        let Ok(domid) = entry.parse::<DomId>() else {
            continue;
        };
        let name = xs.read_opt(TxId::NONE, &format!("/local/domain/{domid}/name"))?;
        if name.as_deref() == Some(arg) {
            return Ok(Domain {
                domid,
                arg: arg.to_owned(),
            });
        }
    }
    Err(unknown())
}

/// The domain's type from `/libxl/<domid>/type`; `None` when libxl did not
/// record one (e.g. dom0, or a domain not created by libxl).
pub fn domain_type<X: Xenstore + ?Sized>(
    xs: &X,
    tx: TxId,
    domid: DomId,
) -> Result<Option<DomainType>> {
    let path = format!("/libxl/{domid}/type");
    match xs.read_opt(tx, &path)? {
        None => Ok(None),
        Some(v) => DomainType::parse(&v)
            .map(Some)
            .ok_or(Error::BadNode { path, value: v }),
    }
}

/// The domain's uuid from `/local/domain/<domid>/vm` (`/vm/<uuid>`).
pub fn uuid<X: Xenstore + ?Sized>(xs: &X, domid: DomId) -> Result<Option<String>> {
    let path = format!("/local/domain/{domid}/vm");
    let Some(vm) = xs.read_opt(TxId::NONE, &path)? else {
        return Ok(None);
    };
    let uuid = vm.rsplit('/').next().unwrap_or_default();
    let well_formed = uuid.len() == 36 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if well_formed {
        Ok(Some(uuid.to_owned()))
    } else {
        Err(Error::BadNode { path, value: vm })
    }
}

#[cfg(test)]
mod tests {
    use super::DomainType;

    #[test]
    fn types_parse_as_libxl_writes_them() {
        assert_eq!(DomainType::parse("pv"), Some(DomainType::Pv));
        assert_eq!(DomainType::parse("pvh"), Some(DomainType::Pvh));
        assert_eq!(DomainType::parse("hvm"), Some(DomainType::Hvm));
        assert_eq!(DomainType::parse("HVM"), None);
        assert_eq!(DomainType::Hvm.as_str(), "hvm");
    }
}
