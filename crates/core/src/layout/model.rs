//! The resolved model of a USB controller: its type can no longer be `auto`.

use std::fmt;
use std::str::FromStr;

/// A resolved controller type (libxl's `libxl_usbctrl_type` minus `auto`).
///
/// The text form is libxl's lower-case string, as written in the `type`
/// node of `/libxl/<domid>/device/vusb/<devid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsbCtrlType {
    /// PVUSB with dom0's kernel usbback (backend kind `vusb`).
    Pv,
    /// PVUSB served by QEMU (backend kind `qusb`).
    Qusb,
    /// A controller emulated by the guest's QEMU, driven over QMP.
    DeviceModel,
}

impl UsbCtrlType {
    /// libxl's string for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            UsbCtrlType::Pv => "pv",
            UsbCtrlType::Qusb => "qusb",
            UsbCtrlType::DeviceModel => "devicemodel",
        }
    }

    /// The backend directory kind under `/local/domain/0/backend/`, if the
    /// type has a xenstore backend (`vusb` for pv, `qusb` for qusb).
    pub fn backend_kind(self) -> Option<&'static str> {
        match self {
            UsbCtrlType::Pv => Some("vusb"),
            UsbCtrlType::Qusb => Some("qusb"),
            UsbCtrlType::DeviceModel => None,
        }
    }
}

impl fmt::Display for UsbCtrlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of `pv`, `qusb`, `devicemodel`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown controller type {0:?}")]
pub struct UnknownCtrlType(pub String);

impl FromStr for UsbCtrlType {
    type Err = UnknownCtrlType;

    /// Case-insensitive, as libxl's generated `from_string`.
    fn from_str(s: &str) -> Result<UsbCtrlType, UnknownCtrlType> {
        match s.to_ascii_lowercase().as_str() {
            "pv" => Ok(UsbCtrlType::Pv),
            "qusb" => Ok(UsbCtrlType::Qusb),
            "devicemodel" => Ok(UsbCtrlType::DeviceModel),
            _ => Err(UnknownCtrlType(s.to_owned())),
        }
    }
}

/// A controller as it exists (or is about to exist) in a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// The guest.
    pub domid: vusb_xenstore::DomId,
    /// Its devid in the guest.
    pub devid: u32,
    /// Its resolved type.
    pub ctype: UsbCtrlType,
    /// USB version (1, 2, or 3 for devicemodel).
    pub version: u32,
    /// Number of ports (ports are 1-based).
    pub ports: u32,
}

/// The guest's `/libxl/<domid>/device/vusb` directory.
pub fn libxl_vusb_dir(domid: vusb_xenstore::DomId) -> String {
    format!("/libxl/{domid}/device/vusb")
}

impl Controller {
    /// `/libxl/<G>/device/vusb/<N>`: libxl's private, trusted copy.
    pub fn libxl_dir(&self) -> String {
        format!("{}/{}", libxl_vusb_dir(self.domid), self.devid)
    }

    /// `/local/domain/<G>/device/vusb/<N>` (pv and qusb only).
    pub fn frontend_dir(&self) -> Option<String> {
        self.ctype
            .backend_kind()
            .map(|_| format!("/local/domain/{}/device/vusb/{}", self.domid, self.devid))
    }

    /// `/local/domain/0/backend/<vusb|qusb>/<G>/<N>` (pv and qusb only; the
    /// backend is always dom0, as xl creates it).
    pub fn backend_dir(&self) -> Option<String> {
        self.ctype.backend_kind().map(|kind| {
            format!(
                "/local/domain/0/backend/{kind}/{}/{}",
                self.domid, self.devid
            )
        })
    }

    /// The authoritative port node of reference §4.4: the dom0 backend's
    /// `port/<P>` for pv/qusb, the libxl dir's for devicemodel.
    pub fn port_path(&self, port: u32) -> String {
        match self.backend_dir() {
            Some(be) => format!("{be}/port/{port}"),
            None => format!("{}/port/{port}", self.libxl_dir()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_libxls() {
        let mut c = Controller {
            domid: 1,
            devid: 0,
            ctype: UsbCtrlType::Pv,
            version: 2,
            ports: 8,
        };
        assert_eq!(c.libxl_dir(), "/libxl/1/device/vusb/0");
        assert_eq!(
            c.frontend_dir().as_deref(),
            Some("/local/domain/1/device/vusb/0")
        );
        assert_eq!(
            c.backend_dir().as_deref(),
            Some("/local/domain/0/backend/vusb/1/0")
        );
        assert_eq!(c.port_path(3), "/local/domain/0/backend/vusb/1/0/port/3");
        c.ctype = UsbCtrlType::Qusb;
        assert_eq!(c.port_path(1), "/local/domain/0/backend/qusb/1/0/port/1");
        c.ctype = UsbCtrlType::DeviceModel;
        assert_eq!(c.frontend_dir(), None);
        assert_eq!(c.port_path(2), "/libxl/1/device/vusb/0/port/2");
        assert_eq!(
            "DeviceModel".parse::<UsbCtrlType>(),
            Ok(UsbCtrlType::DeviceModel)
        );
    }
}
