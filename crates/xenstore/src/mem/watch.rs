//! Watches and their events, with the C xenstored 4.17 rules measured
//! against the real daemon:
//! - a change at `P` fires every watch on `P` or an ancestor of `P`, with
//!   path `P`; a removal of the subtree at `P` fires, for every removed
//!   node below `P` (children first), the watches on exactly that node,
//!   then the watches on `P` and its ancestors (a watch on a path below `P`
//!   that did not exist gets nothing);
//! - only the target of an operation fires (parents created on the way do
//!   not); `MKDIR` of an existing node and `RM` of a missing one fire
//!   nothing; every `WRITE` and `SET_PERMS` fires;
//! - an unprivileged watcher gets an event only if it may read the node
//!   named by the event (as it was before a removal) or its parent; the
//!   initial event is always sent;
//! - a watch given as a relative path reports relative paths;
//! - several watches of one connection producing the same (path, token)
//!   for one change give one event.

use std::collections::HashMap;

use super::path;
use super::tree::{Tree, access};
use crate::{DomId, Perm, WatchEvent};

/// One registered watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Absolute path or special `@...` name.
    pub abs: String,
    /// The token.
    pub token: String,
    /// Registered with a relative path.
    pub relative: bool,
}

/// A change to report.
#[derive(Debug, Clone)]
pub struct Fire {
    /// The node changed (or the special name).
    pub path: String,
    /// Only watches on exactly this path fire (a node removed below the
    /// target of an `RM`); else watches on it and its ancestors.
    pub only: bool,
    /// Permissions of the removed nodes, by path.
    pub removed: HashMap<String, Vec<Perm>>,
}

impl Fire {
    /// A change of `path`: watches on it and its ancestors fire.
    pub fn change(path: &str) -> Fire {
        Fire {
            path: path.to_owned(),
            only: false,
            removed: HashMap::new(),
        }
    }

    /// The removal of `path` with permissions `perms`; `only` for a node
    /// below the target of the removal.
    pub fn removal(path: &str, perms: Vec<Perm>, only: bool) -> Fire {
        Fire {
            path: path.to_owned(),
            only,
            removed: HashMap::from([(path.to_owned(), perms)]),
        }
    }
}

/// The path to report to `w` for `fire`, if it matches.
pub fn matches(w: &Watch, fire: &Fire) -> Option<String> {
    if fire.path.starts_with('@') || w.abs.starts_with('@') {
        return (w.abs == fire.path).then(|| fire.path.clone());
    }
    let hit = if fire.only {
        w.abs == fire.path
    } else {
        path::is_child(&fire.path, &w.abs)
    };
    hit.then(|| fire.path.clone())
}

/// May `domid` see an event for `event_path`?
pub fn permitted(
    tree: &Tree,
    specials: &HashMap<String, Vec<Perm>>,
    domid: DomId,
    event_path: &str,
    fire: &Fire,
) -> bool {
    if domid == 0 {
        return true;
    }
    if event_path.starts_with('@') {
        return specials
            .get(event_path)
            .is_some_and(|p| access(domid, p).read);
    }
    let perms = match fire.removed.get(event_path) {
        Some(p) => Some(p.as_slice()),
        None => tree.live(event_path).map(|n| n.perms.as_slice()),
    };
    let Some(perms) = perms else {
        return false;
    };
    if access(domid, perms).read {
        return true;
    }
    path::parent(event_path)
        .and_then(|p| tree.live(p))
        .is_some_and(|n| access(domid, &n.perms).read)
}

/// The event as the watcher sees it (relative if registered relative).
pub fn event_for(w: &Watch, domid: DomId, abs: String) -> WatchEvent {
    let path = if w.relative {
        let home = format!("{}/", path::home(domid));
        abs.strip_prefix(&home).map(str::to_owned).unwrap_or(abs)
    } else {
        abs
    };
    WatchEvent {
        path,
        token: w.token.clone(),
    }
}
