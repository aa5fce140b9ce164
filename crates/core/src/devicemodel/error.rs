//! Errors of the device-model (QMP) side. Each variant names the action and
//! the QOM id; the QMP error is the `#[source]`.

use std::path::PathBuf;

/// A device-model request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DmError {
    /// The QMP socket could not be reached, or its peer is not QEMU.
    #[error("reaching QEMU over QMP")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: vusb_qmp::Error,
    },
    /// `device_add` of a controller failed.
    #[error("adding USB controller {id} to QEMU")]
    AddController {
        /// QOM id.
        id: String,
        /// Why.
        #[source]
        source: vusb_qmp::Error,
    },
    /// `device_del` of a controller (or the check after it) failed.
    #[error("removing USB controller {id} from QEMU")]
    RemoveController {
        /// QOM id.
        id: String,
        /// Why.
        #[source]
        source: vusb_qmp::Error,
    },
    /// `device_add` of a USB device failed.
    #[error("adding USB device {id} to QEMU")]
    AddDevice {
        /// QOM id.
        id: String,
        /// Why.
        #[source]
        source: vusb_qmp::Error,
    },
    /// `device_del` of a USB device (or the wait after it) failed.
    #[error("removing USB device {id} from QEMU")]
    RemoveDevice {
        /// QOM id.
        id: String,
        /// Why.
        #[source]
        source: vusb_qmp::Error,
    },
    /// Reading QEMU's device tree failed.
    #[error("querying QEMU's devices")]
    Query(#[source] vusb_qmp::Error),
}

impl DmError {
    /// The QMP error underneath.
    pub fn qmp(&self) -> &vusb_qmp::Error {
        match self {
            DmError::Connect { source, .. }
            | DmError::AddController { source, .. }
            | DmError::RemoveController { source, .. }
            | DmError::AddDevice { source, .. }
            | DmError::RemoveDevice { source, .. }
            | DmError::Query(source) => source,
        }
    }
}
