//! The host crate's one error type. Every variant names the action that
//! failed and carries the file, device or interface it was about; the
//! underlying cause is the `#[source]`, never repeated in the message.

use std::path::PathBuf;

/// Errors of host USB discovery, lookups and driver binding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a sysfs attribute (or a procfs file) failed.
    #[error("reading {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not in the expected format.
    #[error("{}: {value:?} is not {expected}", path.display())]
    ParseAttribute {
        /// The file.
        path: PathBuf,
        /// What it contained (trimmed).
        value: String,
        /// What was expected ("4 hex digits", "a decimal number"...).
        expected: &'static str,
    },
    /// Reading a symbolic link failed.
    #[error("reading link {}", path.display())]
    ReadLink {
        /// The link.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Listing a directory failed.
    #[error("listing {}", path.display())]
    ListDirectory {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No USB device matches what the user asked for.
    #[error("no host USB device with {what}")]
    DeviceNotFound {
        /// The selector, as text (`busid 3-1.2`, `hostbus 3 hostaddr 5`).
        what: String,
    },
    /// Several USB devices match; the user must be more precise.
    #[error("{what} matches several host USB devices: {}", matches.join(", "))]
    AmbiguousDevice {
        /// The selector, as text.
        what: String,
        /// The busids of every match.
        matches: Vec<String>,
    },
    /// The selector names devices, but none passes the interface filter.
    #[error("{what}: no device passes the interface filter ({})", refusals.join("; "))]
    FilteredOut {
        /// The selector, as text.
        what: String,
        /// Each named device's busid and why it does not pass.
        refusals: Vec<String>,
    },
    /// A device selector or number the user wrote is malformed.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidSelector {
        /// Which kind of value (`busid`, `vendor:product`...).
        what: &'static str,
        /// What the user wrote.
        input: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Unbinding an interface from its driver failed.
    #[error("unbinding interface {interface} from driver {driver}")]
    Unbind {
        /// The interface (`3-1.2:1.0`).
        interface: String,
        /// Its driver.
        driver: String,
        /// The cause (from the write to `unbind`).
        #[source]
        source: std::io::Error,
    },
    /// Binding an interface to a driver failed.
    #[error("binding interface {interface} to driver {driver}")]
    Bind {
        /// The interface (`3-1.2:1.0`).
        interface: String,
        /// The driver.
        driver: String,
        /// The cause (from the write to `bind`).
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
