//! The node operations (read, write, mkdir, rm, directory, permissions) on
//! the tree, live or inside a transaction, with the C xenstored 4.17
//! permission and error rules (measured, see `docs/xenstore-memstore.md`):
//!
//! - for a missing node the daemon walks up to the nearest existing
//!   ancestor: if the connection has the wanted right there the answer is
//!   `ENOENT` (and a write creates the missing nodes), else `EACCES`;
//! - a created node inherits its parent's permissions; when an
//!   unprivileged domain creates it, the owner entry names that domain;
//! - `RM` of a missing node whose parent exists succeeds; `RM /` is
//!   `EINVAL`; `MKDIR` of an existing node succeeds without an event;
//! - only the owner (or dom0) may set permissions (`EACCES`), and an
//!   unprivileged owner may not change the owner (`EPERM`);
//! - `DIRECTORY` whose list exceeds the payload limit is `E2BIG`.

use super::path;
use super::tree::{Node, Tree, Txn, access};
use super::watch::Fire;
use crate::wire::PAYLOAD_MAX;
use crate::{DomId, Errno, Perm};

/// Limits applied to unprivileged domains (the daemon's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Node record size (`-S`, default 2048) from which a write is
    /// `ENOSPC`.
    pub node_size: usize,
    /// Watches of a domain beyond which `WATCH` is `E2BIG` (`-W`, 128).
    pub watches: usize,
    /// Open transactions beyond which a start is `ENOSPC` (`-t`, 10).
    pub transactions: usize,
    /// Nodes a domain may own; creating more is `ENOSPC` (`-E`, 1000).
    pub nodes: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            node_size: 2048,
            watches: 128,
            transactions: 10,
            nodes: 1000,
        }
    }
}

/// Which right an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Read.
    Read,
    /// Write.
    Write,
    /// Write, as the node's owner (`SET_PERMS`).
    Owner,
}

/// The operations done here.
pub struct NodeCtx<'a> {
    /// The tree.
    pub tree: &'a mut Tree,
    /// The transaction, if any.
    pub tx: Option<&'a mut Txn>,
    /// The requesting domain.
    pub domid: DomId,
    /// Quotas for unprivileged domains.
    pub quotas: Quotas,
}

fn allowed(domid: DomId, perms: &[Perm], want: Want) -> bool {
    let a = access(domid, perms);
    match want {
        Want::Read => a.read,
        Want::Write => a.write,
        Want::Owner => a.write && (domid == 0 || perms.first().is_some_and(|o| o.domid == domid)),
    }
}

impl NodeCtx<'_> {
    fn get(&self, p: &str) -> Option<&Node> {
        self.tree.get(self.tx.as_deref(), p)
    }

    fn touch(&mut self, p: &str) {
        self.tree.touch(self.tx.as_deref_mut(), p);
    }

    /// The node, permission-checked; for a missing one `ENOENT` or
    /// `EACCES` from the nearest existing ancestor.
    pub fn lookup(&mut self, p: &str, want: Want) -> Result<Node, Errno> {
        self.touch(p);
        if let Some(n) = self.get(p) {
            return if allowed(self.domid, &n.perms, want) {
                Ok(n.clone())
            } else {
                Err(Errno::EACCES)
            };
        }
        // Ownership is not asked of the ancestor (measured).
        let want = if want == Want::Owner {
            Want::Write
        } else {
            want
        };
        let mut cur = p;
        while let Some(up) = path::parent(cur) {
            self.touch(up);
            if let Some(n) = self.get(up) {
                return Err(if allowed(self.domid, &n.perms, want) {
                    Errno::ENOENT
                } else {
                    Errno::EACCES
                });
            }
            cur = up;
        }
        Err(Errno::ENOENT)
    }

    fn check_size(&self, n: &Node) -> Result<(), Errno> {
        // Measured: a record of exactly `node_size` bytes is refused too.
        if self.domid != 0 && n.record_size() >= self.quotas.node_size {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// Events of an operation: returned outside a transaction, queued in
    /// it for the commit otherwise.
    fn fire(&mut self, fires: Vec<Fire>) -> Vec<Fire> {
        match self.tx.as_deref_mut() {
            Some(t) => {
                for f in fires {
                    t.queue_fire(&f.path, f.only, f.removed);
                }
                Vec::new()
            }
            None => fires,
        }
    }

    /// `WRITE` (`value`) or `MKDIR` (`None`).
    pub fn write(&mut self, p: &str, value: Option<&[u8]>) -> Result<Vec<Fire>, Errno> {
        match self.lookup(p, Want::Write) {
            Ok(mut n) => {
                let Some(v) = value else {
                    return Ok(Vec::new());
                };
                n.value = v.to_vec();
                self.check_size(&n)?;
                self.tree.put(self.tx.as_deref_mut(), p, n);
            }
            Err(Errno::ENOENT) => self.create(p, value.unwrap_or_default())?,
            Err(e) => return Err(e),
        }
        Ok(self.fire(vec![Fire::change(p)]))
    }

    /// Creates `p` and its missing ancestors; all checks before any change.
    fn create(&mut self, p: &str, value: &[u8]) -> Result<(), Errno> {
        let mut missing = vec![p.to_owned()];
        let mut top = p;
        let parent_path = loop {
            let Some(up) = path::parent(top) else {
                return Err(Errno::ENOENT);
            };
            if self.get(up).is_some() {
                break up.to_owned();
            }
            missing.push(up.to_owned());
            top = up;
        };
        let Some(mut parent) = self.get(&parent_path).cloned() else {
            return Err(Errno::ENOENT);
        };
        if self.domid != 0 && self.tree.count_owned(self.domid) + missing.len() > self.quotas.nodes
        {
            return Err(Errno::ENOSPC);
        }
        let mut perms = parent.perms.clone();
        if self.domid != 0
            && let Some(owner) = perms.first_mut()
        {
            owner.domid = self.domid;
        }
        let mut writes = Vec::new();
        let mut dir_path = parent_path;
        for (i, child_path) in missing.iter().rev().enumerate() {
            parent.children.push(path::basename(child_path).to_owned());
            self.check_size(&parent)?;
            writes.push((dir_path, parent));
            let is_target = i + 1 == missing.len();
            parent = Node {
                value: if is_target {
                    value.to_vec()
                } else {
                    Vec::new()
                },
                perms: perms.clone(),
                children: Vec::new(),
                generation: 0,
            };
            dir_path = child_path.clone();
        }
        self.check_size(&parent)?;
        writes.push((dir_path, parent));
        // The daemon writes the new leaf first, then up to the parent.
        for (wp, n) in writes.into_iter().rev() {
            self.tree.put(self.tx.as_deref_mut(), &wp, n);
        }
        Ok(())
    }

    /// `RM`.
    pub fn rm(&mut self, p: &str) -> Result<Vec<Fire>, Errno> {
        if p == "/" {
            return Err(Errno::EINVAL);
        }
        match self.lookup(p, Want::Write) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let parent_exists = path::parent(p).is_some_and(|up| self.get(up).is_some());
                return if parent_exists {
                    Ok(Vec::new())
                } else {
                    Err(Errno::ENOENT)
                };
            }
            Err(e) => return Err(e),
        }
        let up = path::parent(p).unwrap_or("/").to_owned();
        self.touch(&up);
        let Some(mut parent) = self.get(&up).cloned() else {
            // A transaction can see a node (copied live) under a parent it
            // saw missing; the daemon then answers EINVAL.
            return Err(Errno::EINVAL);
        };
        let mut removed = Vec::new();
        let walked = self.rm_walk(p, &mut removed);
        let fires: Vec<Fire> = removed
            .into_iter()
            .map(|(n, perms)| {
                let only = n != p;
                Fire::removal(&n, perms, only)
            })
            .collect();
        let fires = self.fire(fires);
        walked?;
        let name = path::basename(p);
        if !parent.children.iter().any(|c| c == name) {
            // Only inside a transaction: its copy of the parent does not
            // list the node it saw live. The daemon has removed the subtree
            // (in the transaction) when it finds its store "corrupt" and
            // answers EIO, leaving the parent as it was.
            return Err(Errno::EIO);
        }
        parent.children.retain(|c| c != name);
        self.tree.put(self.tx.as_deref_mut(), &up, parent);
        Ok(fires)
    }

    /// The daemon's removal walk: depth first, each child removed (and its
    /// entry dropped from its parent, a write) before the node itself;
    /// `removed` gets the nodes in removal order (children first). A listed
    /// child the transaction sees missing stops the walk with EIO (the
    /// daemon's "corrupt store" path), what was removed stays removed.
    fn rm_walk(&mut self, n: &str, removed: &mut Vec<(String, Vec<Perm>)>) -> Result<(), Errno> {
        self.touch(n);
        let Some(mut node) = self.get(n).cloned() else {
            return Err(Errno::EIO);
        };
        for c in node.children.clone() {
            let cp = path::join(n, &c);
            self.touch(&cp);
            if self.get(&cp).is_none() {
                return Err(Errno::EIO);
            }
            self.rm_walk(&cp, removed)?;
            node.children.retain(|x| *x != c);
            self.tree.put(self.tx.as_deref_mut(), n, node.clone());
        }
        removed.push((n.to_owned(), node.perms));
        self.tree.delete(self.tx.as_deref_mut(), n);
        Ok(())
    }

    /// `SET_PERMS` on a node.
    pub fn set_perms(&mut self, p: &str, perms: &[Perm]) -> Result<Vec<Fire>, Errno> {
        // Only the owner (or dom0) may change permissions, and not the owner.
        let mut n = self.lookup(p, Want::Owner)?;
        if self.domid != 0 && n.perms.first().map(|o| o.domid) != perms.first().map(|o| o.domid) {
            return Err(Errno::EPERM);
        }
        n.perms = perms.to_vec();
        self.check_size(&n)?;
        self.tree.put(self.tx.as_deref_mut(), p, n);
        Ok(self.fire(vec![Fire::change(p)]))
    }

    /// `DIRECTORY`.
    pub fn directory(&mut self, p: &str) -> Result<Vec<String>, Errno> {
        let n = self.lookup(p, Want::Read)?;
        if n.child_blob().len() > PAYLOAD_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(n.children)
    }

    /// `DIRECTORY_PART`: the reply payload (generation, then the names
    /// from byte `offset` that fit, an extra NUL after the last part).
    pub fn directory_part(&mut self, p: &str, offset: usize) -> Result<Vec<u8>, Errno> {
        let n = self.lookup(p, Want::Read)?;
        let mut out = n.generation.to_string().into_bytes();
        out.push(0);
        let blob = n.child_blob();
        let rest = blob.get(offset..).unwrap_or_default();
        let room = PAYLOAD_MAX.saturating_sub(out.len() + 1);
        let mut used = 0;
        for piece in rest.split_inclusive(|&b| b == 0) {
            if used + piece.len() > room {
                break;
            }
            used += piece.len();
        }
        out.extend_from_slice(&rest[..used]);
        if used == rest.len() {
            out.push(0);
        }
        Ok(out)
    }
}
