//! The path checks xenstored applies (`is_valid_nodename` and friends),
//! done before a request is sent so a bad path is a typed
//! [`Error::InvalidPath`] naming the problem instead of a bare `EINVAL`.
//!
//! Accepted: `/`, or `/` followed by names of `[A-Za-z0-9-/_@]` without an
//! empty component (`//`) or a trailing `/`; relative paths (resolved by the
//! daemon against the connection's domain home) where the rule allows them;
//! the special watch paths `@introduceDomain` and `@releaseDomain` where
//! the rule allows them.
//!
//! Deliberate difference: xenstored applies its path-length quota only to
//! unprivileged domains, so dom0 could create longer paths; vusb keeps to
//! `XENSTORE_ABS_PATH_MAX` / `XENSTORE_REL_PATH_MAX` of `xs_wire.h` always,
//! so that what it writes stays readable by every client and guest.

use super::{ABS_PATH_MAX, REL_PATH_MAX};
use crate::{Error, Result};

/// The special paths that can be watched (and carry permissions).
pub const SPECIAL_PATHS: [&str; 2] = ["@introduceDomain", "@releaseDomain"];

/// Which kinds of path a request accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRule {
    /// A path not starting with `/` is accepted (relative to the domain home).
    pub relative_ok: bool,
    /// `@introduceDomain` / `@releaseDomain` are accepted.
    pub special_ok: bool,
}

impl PathRule {
    /// Absolute node paths only.
    pub const ABSOLUTE: PathRule = PathRule {
        relative_ok: false,
        special_ok: false,
    };
    /// Absolute or relative node paths.
    pub const NODE: PathRule = PathRule {
        relative_ok: true,
        special_ok: false,
    };

    /// The same rule, also accepting the special `@...` paths.
    pub const fn with_special(self) -> PathRule {
        PathRule {
            special_ok: true,
            ..self
        }
    }

    /// The same rule, with relative paths accepted or not.
    pub const fn with_relative(self, relative_ok: bool) -> PathRule {
        PathRule {
            relative_ok,
            ..self
        }
    }
}

fn invalid(path: &str, why: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_owned(),
        why,
    }
}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Checks `path` against `rule` and the daemon's own rules.
pub fn check_path(path: &str, rule: PathRule) -> Result<()> {
    if path.is_empty() {
        return Err(invalid(path, "empty path"));
    }
    if path.as_bytes().contains(&0) {
        return Err(invalid(path, "contains a NUL byte"));
    }
    if path.starts_with('@') {
        if !SPECIAL_PATHS.contains(&path) {
            return Err(invalid(path, "unknown special path"));
        }
        if !rule.special_ok {
            return Err(invalid(path, "special path not allowed here"));
        }
        return Ok(());
    }
    if path.starts_with('/') {
        if path.len() > ABS_PATH_MAX {
            return Err(invalid(path, "longer than XENSTORE_ABS_PATH_MAX (3072)"));
        }
    } else {
        if !rule.relative_ok {
            return Err(invalid(
                path,
                "relative path where an absolute one is needed",
            ));
        }
        if path.len() > REL_PATH_MAX {
            return Err(invalid(path, "longer than XENSTORE_REL_PATH_MAX (2048)"));
        }
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(invalid(path, "ends with /"));
    }
    if path.contains("//") {
        return Err(invalid(path, "contains an empty component (//)"));
    }
    if !path.bytes().all(valid_char) {
        return Err(invalid(path, "has a character outside [A-Za-z0-9-/_@]"));
    }
    Ok(())
}

/// Checks a watch token: any bytes but NUL.
pub fn check_token(token: &str) -> Result<()> {
    if token.as_bytes().contains(&0) {
        return Err(Error::InvalidToken {
            token: token.to_owned(),
        });
    }
    Ok(())
}
