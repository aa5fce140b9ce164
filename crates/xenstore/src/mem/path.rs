//! Path rules of the C xenstored 4.17 (`is_valid_nodename`,
//! `canonicalize`), applied by the memory store to what a connection sends.
//!
//! Measured against the real daemon (see `docs/xenstore-memstore.md`):
//! - a path not starting with `/` or `@` is relative to the connection's
//!   home `/local/domain/<domid>`;
//! - names are `[A-Za-z0-9-/_@]`, no `//`, no trailing `/` (except `/`);
//! - the length limit (2048) applies to the part after
//!   `/local/domain/<id>/` when the path lies below a domain home, to the
//!   whole path otherwise, for dom0 as for guests;
//! - `@...` paths are only valid for watches and special-node permissions.

use crate::{DomId, Errno};

/// `XENSTORE_REL_PATH_MAX`, the default path-length quota.
pub const PATH_MAX: usize = 2048;

/// A checked, absolute path or a special `@...` name, with the form the
/// client used (relative or not) kept for watch events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canon {
    /// The absolute path (or the special name).
    pub abs: String,
    /// True when the client gave a relative path.
    pub relative: bool,
}

/// The home of a domain, `/local/domain/<domid>`.
pub fn home(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Offset of the part below `/local/domain/<id>/`, 0 when not below one
/// (the daemon's `sscanf("/local/domain/%5u/%n")`).
fn local_offset(path: &str) -> usize {
    let Some(rest) = path.strip_prefix("/local/domain/") else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 5 || rest.as_bytes().get(digits) != Some(&b'/') {
        return 0;
    }
    "/local/domain/".len() + digits + 1
}

/// True if `path` is a valid absolute node name.
pub fn is_valid_abs(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    if path.len() > 1 && path.ends_with('/') {
        return false;
    }
    if path.contains("//") || !path.bytes().all(valid_char) {
        return false;
    }
    path.len() - local_offset(path) <= PATH_MAX
}

/// Resolves `raw` for a connection of domain `domid`: relative paths are
/// joined to the home; `@...` is accepted only when `special_ok`.
pub fn canonicalize(domid: DomId, raw: &str, special_ok: bool) -> Result<Canon, Errno> {
    if raw.starts_with('@') {
        if special_ok && raw.bytes().all(valid_char) {
            return Ok(Canon {
                abs: raw.to_owned(),
                relative: false,
            });
        }
        return Err(Errno::EINVAL);
    }
    let (abs, relative) = if raw.starts_with('/') {
        (raw.to_owned(), false)
    } else {
        (format!("{}/{raw}", home(domid)), true)
    };
    if is_valid_abs(&abs) {
        Ok(Canon { abs, relative })
    } else {
        Err(Errno::EINVAL)
    }
}

/// The parent of an absolute path (`/` for top-level names); `None` for `/`.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of an absolute path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Joins a child name to a directory path.
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// True if `child` is `parent` or lies below it (the daemon's `is_child`).
pub fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child.starts_with('/');
    }
    child == parent
        || (child.len() > parent.len()
            && child.starts_with(parent)
            && child.as_bytes()[parent.len()] == b'/')
}

/// The C library's `atoi` on a domain id argument: leading digits, else 0.
pub fn atoi_domid(s: &str) -> DomId {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonicalize(3, "a/b", false).map(|c| c.abs),
            Ok("/local/domain/3/a/b".into())
        );
        assert_eq!(canonicalize(0, "/", false).map(|c| c.relative), Ok(false));
        for bad in ["", "/a/", "/a//b", "/a.b", "/a b", "@x y"] {
            assert_eq!(canonicalize(0, bad, true), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(canonicalize(0, "@releaseDomain", false), Err(Errno::EINVAL));
        assert!(canonicalize(0, "@releaseDomain", true).is_ok());
    }

    #[test]
    fn length_limit_counts_below_domain_home() {
        let long = format!("/{}", "x".repeat(PATH_MAX - 1));
        assert!(is_valid_abs(&long));
        assert!(!is_valid_abs(&format!("{long}x")));
        let local = format!("/local/domain/7/{}", "y".repeat(PATH_MAX));
        assert!(is_valid_abs(&local));
        assert!(!is_valid_abs(&format!("{local}y")));
    }

    #[test]
    fn parents_and_children() {
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/"), None);
        assert!(is_child("/a/b", "/a"));
        assert!(is_child("/a", "/a"));
        assert!(!is_child("/ab", "/a"));
        assert!(is_child("/ab", "/"));
        assert_eq!(atoi_domid("12x"), 12);
        assert_eq!(atoi_domid("abc"), 0);
    }
}
