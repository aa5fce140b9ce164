//! The core library's error type: one enum, each variant named after the
//! action that failed and carrying the identifiers involved (domain,
//! controller devid, port, busid, path). Causes are `#[source]`s and are not
//! repeated in the message, so the CLI prints the chain once.
//!
//! Messages of variants that correspond to a libxl diagnostic use libxl's
//! wording (reference §1.7), so users of `xl` recognise them.

use vusb_host::BusId;
use vusb_xenstore::{DomId, Errno};

/// Errors of vusb's operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A xenstore request failed.
    #[error("xenstore")]
    Xenstore(#[from] vusb_xenstore::Error),

    /// A xenstore request on a named path failed.
    #[error("xenstore request on `{path}' failed")]
    XenstorePath {
        /// The path the request was about.
        path: String,
        /// The xenstore error.
        #[source]
        source: vusb_xenstore::Error,
    },

    /// The domain named on the command line does not exist.
    #[error("{arg} is an invalid domain identifier")]
    UnknownDomain {
        /// What the user typed.
        arg: String,
    },

    /// A node that libxl always writes is missing (libxl's "xenstore read
    /// failed" for mandatory reads).
    #[error("xenstore read failed: `{path}'")]
    MissingNode {
        /// The missing node.
        path: String,
    },

    /// A node holds a value vusb cannot interpret.
    #[error("bad value {value:?} in xenstore node `{path}'")]
    BadNode {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },

    /// A controller argument or default is invalid (libxl's setdefault
    /// messages, e.g. "USB version for paravirtualized devices must be 1 or 2").
    #[error("{0}")]
    InvalidController(String),

    /// The controller devid is already used.
    #[error("device already exists in xenstore")]
    ControllerExists {
        /// The domain.
        domid: DomId,
        /// The devid.
        devid: u32,
    },

    /// No controller with this devid.
    #[error("Unknown device {devid}.")]
    UnknownController {
        /// The domain.
        domid: DomId,
        /// The devid as the user typed it.
        devid: String,
    },

    /// qusb controller on a domain whose device model does not advertise it.
    #[error("backend type not supported by device model")]
    QusbNotSupported {
        /// The domain.
        domid: DomId,
    },

    /// `type=pv` on a dom0 without the kernel usbback driver (upstream
    /// Linux has none): the backend would never answer.
    #[error(
        "USB controller type pv needs dom0's kernel usbback driver, which is not loaded ({} does not exist); use type=qusb",
        driver_dir.display()
    )]
    UsbbackMissing {
        /// The sysfs driver directory that is missing.
        driver_dir: std::path::PathBuf,
    },

    /// The guest's QEMU backend for qusb could not be started
    /// ([`crate::qusb_backend`]).
    #[error("device model required but not running, and `{}' could not be started", program.display())]
    QusbBackendStart {
        /// The domain.
        domid: DomId,
        /// The QEMU program.
        program: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The QEMU started for a domain's qusb backend ended while starting.
    #[error("the qusb backend (QEMU) of domain {domid} exited while starting; its log is {}", log.display())]
    QusbBackendExited {
        /// The domain.
        domid: DomId,
        /// QEMU's log file.
        log: std::path::PathBuf,
    },

    /// The QEMU started for a domain's qusb backend did not come up.
    #[error("the qusb backend (QEMU) of domain {domid} was not running after {secs} s; its log is {}", log.display())]
    QusbBackendNotReady {
        /// The domain.
        domid: DomId,
        /// The time waited.
        secs: u64,
        /// QEMU's log file.
        log: std::path::PathBuf,
    },

    /// The QEMU vusb started for a domain's qusb backend did not stop.
    #[error("the qusb backend (QEMU pid {pid}) of domain {domid} did not stop")]
    QusbBackendStop {
        /// The domain.
        domid: DomId,
        /// QEMU's pid.
        pid: u32,
    },

    /// A device model is needed but none runs for the domain.
    #[error("device model required but not running")]
    DeviceModelNotRunning {
        /// The domain.
        domid: DomId,
    },

    /// udevd runs but has not announced the device: the QEMU that would
    /// open it cannot see it yet ([`vusb_host::udev`]).
    #[error(
        "udev has not announced {busid} after {waited_ms} ms, so QEMU cannot see it yet (QEMU finds USB devices through udev); nothing was changed, try again"
    )]
    NotAnnouncedByUdev {
        /// The device.
        busid: BusId,
        /// How long vusb waited.
        waited_ms: u64,
    },

    /// The backend did not reach the wanted state in time.
    #[error("backend `{path}' did not reach state {wanted} within {secs} s (last state {last})")]
    BackendTimeout {
        /// The backend directory.
        path: String,
        /// The state waited for.
        wanted: u32,
        /// The last state seen (`-1` when absent).
        last: i64,
        /// The timeout.
        secs: u64,
    },

    /// The host device cannot be passed through (hub, root hub, absent).
    /// The message is libxl's, whatever the reason; `why` is not a
    /// `#[source]` so that line stays libxl's byte for byte: the CLI
    /// explains `why` on a line of its own.
    #[error("USB device is not assignable.")]
    NotAssignable {
        /// The device's busid, when known.
        busid: Option<String>,
        /// Why.
        why: Box<Unassignable>,
    },

    /// The device needs isochronous transfers, which a pv or qusb
    /// controller cannot carry (checked before anything is written).
    #[error(
        "USB device {busid} has isochronous {endpoint} (a webcam or audio device?), which a {ctype} controller cannot carry: attach it to a devicemodel controller with xHCI (usbctrl-attach <dom> type=devicemodel version=3, HVM guests), or use --force"
    )]
    IsochronousOnPvUsb {
        /// The device.
        busid: BusId,
        /// The controller's type (`pv`, `qusb`).
        ctype: crate::layout::UsbCtrlType,
        /// The first isochronous endpoint, described.
        endpoint: String,
    },

    /// The host device is already assigned (vusb's record, or a port node).
    #[error("USB device already attached to a domain")]
    AlreadyAssigned {
        /// The device.
        busid: BusId,
        /// Where it is.
        domid: DomId,
    },

    /// The device's interfaces are already on usbback although vusb has no
    /// record of it: attached by another toolstack (`xl`), or left over by
    /// a crash (`vusb usb-recover` gives it back).
    #[error("USB device already attached to a domain")]
    BoundToUsbback {
        /// The device.
        busid: BusId,
    },

    /// `port=` without `controller=`.
    #[error("USB controller must be specified if you specify port")]
    PortWithoutController,

    /// The port named by the user is occupied.
    #[error("The controller port isn't available")]
    PortInUse {
        /// Controller devid.
        devid: u32,
        /// Port.
        port: u32,
    },

    /// The port named by the user is outside `1..=num-ports` (libxl bug C1).
    #[error("port {port} is out of range: controller {devid} has ports 1 to {ports}")]
    PortOutOfRange {
        /// Controller devid.
        devid: u32,
        /// The port asked for.
        port: i64,
        /// The controller's number of ports.
        ports: u32,
    },

    /// The controller named by the user has no free port.
    #[error("No available port under specified controller")]
    NoFreePort {
        /// Controller devid.
        devid: u32,
    },

    /// A controller's backend is not dom0.
    #[error("Don't support adding USB device from non-Dom0 backend")]
    NonDom0Backend {
        /// Controller devid.
        devid: u32,
    },

    /// No device at this controller/port (or by this host identity).
    #[error("Unknown device at controller {ctrl} port {port}.")]
    UnknownDevice {
        /// The controller as typed.
        ctrl: String,
        /// The port as typed.
        port: String,
    },

    /// No device of the domain matches the host identity given.
    #[error("no device {busid} attached to domain {domid}")]
    DeviceNotAttached {
        /// The device.
        busid: String,
        /// The domain.
        domid: DomId,
    },

    /// The controller type is not handled by this operation.
    #[error("Unsupported usb controller type")]
    UnsupportedControllerType {
        /// Controller devid.
        devid: u32,
    },

    /// The vusb assignment record under `/vusb/assigned` is malformed.
    #[error("bad assignment record `{path}': {reason}")]
    BadAssignment {
        /// The record's node.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// The host layer failed (lookup, sysfs).
    #[error("host device lookup failed")]
    Host(#[source] Box<vusb_host::Error>),

    /// Driver rebinding (pv) failed.
    #[error("rebinding the interfaces of {busid} failed")]
    Rebind {
        /// The device.
        busid: BusId,
        /// The cause.
        #[source]
        source: Box<crate::rebind::Error>,
    },

    /// The device model (QMP) side failed.
    #[error("device model request for domain {domid} failed")]
    DeviceModel {
        /// The domain.
        domid: DomId,
        /// The cause.
        #[source]
        source: Box<crate::devicemodel::DmError>,
    },

    /// QEMU accepted a `device_del` but the guest did not release the
    /// device in time; it stays listed.
    #[error("the guest of domain {domid} did not release {id} in time; it stays listed")]
    NotReleased {
        /// The domain.
        domid: DomId,
        /// The QOM id.
        id: String,
    },

    /// Reading or writing libxl's stored domain configuration failed.
    #[error("updating libxl's stored configuration `{path}' failed")]
    LibxlJson {
        /// The JSON file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// libxl's stored configuration is not valid JSON of the expected shape.
    #[error("libxl's stored configuration `{path}' is malformed: {reason}")]
    LibxlJsonMalformed {
        /// The JSON file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Reading or writing vusb's saved USB configuration failed
    /// ([`crate::persist`]).
    #[error("updating vusb's saved configuration `{path}' failed")]
    SavedConfig {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// vusb's saved configuration cannot be read back.
    #[error("vusb's saved configuration `{path}' is malformed: {reason}")]
    SavedConfigMalformed {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// There is no saved configuration for the domain (or no uuid to find
    /// it by).
    #[error("no saved USB configuration for domain {domid}{}", uuid.as_deref().map(|u| format!(" (uuid {u})")).unwrap_or_default())]
    NoSavedConfig {
        /// The domain.
        domid: DomId,
        /// Its uuid, if it has one.
        uuid: Option<String>,
    },

    /// A configuration names a controller it does not define and the guest
    /// does not have.
    #[error(
        "usbdev {index} names controller {ctrl}, which neither the configuration nor the guest has"
    )]
    UndefinedController {
        /// Index of the usbdev in the configuration.
        index: usize,
        /// The controller devid.
        ctrl: i64,
    },

    /// A configuration holds a device type that cannot be given to a Xen
    /// guest at run time (vusb's `type=tablet|mouse|keyboard`, which only
    /// plain QEMU VMs support).
    #[error("usbdev {index} has type {kind}, which config-apply cannot add to a Xen guest")]
    UnsupportedDeviceType {
        /// Index of the usbdev in the configuration.
        index: usize,
        /// The type.
        kind: String,
    },

    /// One step of `config-apply` failed (everything it did was undone).
    #[error("applying {setting} {index} ({spec}) failed")]
    ConfigApply {
        /// `usbctrl` or `usbdev`.
        setting: &'static str,
        /// Index of the entry in that list of the configuration.
        index: usize,
        /// The entry, in spec form.
        spec: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },

    /// An emulated device (`type=tablet|mouse|keyboard`) was asked for on
    /// a controller QEMU does not drive.
    #[error(
        "controller {devid} is of type {ctype}: emulated devices need a devicemodel controller"
    )]
    EmulatedNeedsDeviceModel {
        /// The controller devid.
        devid: u32,
        /// Its type.
        ctype: String,
    },

    /// An emulated device was asked for on a guest without a device model
    /// to emulate it (PV, PVH).
    #[error("domain {domid} is not an HVM guest: emulated devices need its device model")]
    EmulatedNeedsHvm {
        /// The domain.
        domid: DomId,
    },

    /// vusb's record of an emulated device is malformed.
    #[error("bad emulated device record `{path}': {value:?}")]
    BadEmulatedRecord {
        /// The node.
        path: String,
        /// What it holds.
        value: String,
    },

    /// Another vusb command holds what this one needs, and did not let go
    /// within the lock wait ([`crate::lock`]).
    #[error("{what} is busy: held by {holder}; gave up after {secs} s")]
    Busy {
        /// What was locked (device, controller, guest).
        what: String,
        /// The holder recorded in the lock file (pid and command line).
        holder: String,
        /// How long this command waited.
        secs: f64,
    },

    /// An earlier vusb command on this device was interrupted (its journal
    /// says so) and must be resolved first; the command that finds it
    /// does so itself when it can, else `vusb usb-recover` does.
    #[error(
        "an interrupted {step} of USB device {busid} (domain {domid}) is unresolved; run `vusb usb-recover`"
    )]
    Interrupted {
        /// The device.
        busid: BusId,
        /// The domain of its record.
        domid: DomId,
        /// The journal step found.
        step: &'static str,
    },

    /// The controller named for an attach was being removed by a command
    /// that was interrupted (its journal says so): vusb completed the
    /// removal (or could not), and places nothing on it.
    #[error(
        "controller {devid} of domain {domid} was being removed by an interrupted command: {}",
        if *finished { "vusb completed the removal; attach to another controller" } else { "completing the removal failed; run `vusb usb-recover`" }
    )]
    ControllerRemovalInterrupted {
        /// The domain.
        domid: DomId,
        /// The controller.
        devid: u32,
        /// Whether the removal is now complete.
        finished: bool,
    },

    /// A lock file could not be opened or locked.
    #[error("lock `{name}' failed")]
    Lock {
        /// The lock's name.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// Several removals failed; the first cause is kept.
    #[error("removing {what} of domain {domid} failed")]
    Remove {
        /// What was being removed.
        what: String,
        /// The domain.
        domid: DomId,
        /// The first failure.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The xenstore errno behind this error, if any.
    pub fn xs_errno(&self) -> Option<Errno> {
        match self {
            Error::Xenstore(e) | Error::XenstorePath { source: e, .. } => e.errno(),
            _ => None,
        }
    }
}

/// Why a host device cannot be given to a guest ([`Error::NotAssignable`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Unassignable {
    /// The selector names no device or several, or is malformed.
    Lookup(vusb_host::Error),
    /// The device exists but the host may not give it away.
    Refused(vusb_host::Refusal),
    /// A selector lacks a key it needs (`vendor=` without `product=`).
    IncompleteSelector {
        /// The keys given.
        given: &'static str,
        /// The key missing.
        missing: &'static str,
    },
    /// Selectors naming the device in different ways were given together
    /// (`busid=` with `hostbus=`/`hostaddr=`): vusb will not pick one.
    ConflictingSelectors {
        /// The selector kinds given (`busid=`, `hostbus=/hostaddr=`...).
        given: Vec<&'static str>,
    },
}

impl From<vusb_host::Error> for Error {
    fn from(e: vusb_host::Error) -> Error {
        Error::Host(Box::new(e))
    }
}

/// The one place that adds xenstore path context: wraps a xenstore error
/// with the path the request was about (`.map_err(at(&path))`).
pub(crate) fn at(path: &str) -> impl FnOnce(vusb_xenstore::Error) -> Error + '_ {
    move |source| Error::XenstorePath {
        path: path.to_owned(),
        source,
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
