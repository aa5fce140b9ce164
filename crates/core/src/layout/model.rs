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
