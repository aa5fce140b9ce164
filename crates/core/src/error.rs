//! The core library's error type. Placeholder: its owner grows it.

/// Errors of vusb's operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A xenstore request failed.
    #[error("xenstore")]
    Xenstore(#[from] vusb_xenstore::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
