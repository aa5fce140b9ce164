//! The node tree and the per-transaction view of it.
//!
//! Like the C xenstored 4.17, every node carries a generation number, bumped
//! by each write of the node (a value write, a permission change, a child
//! added or removed). A transaction takes no snapshot of the whole tree:
//! it copies each node when it first touches it (read, listed, written, or
//! walked through as an ancestor) and from then on sees that copy, or its
//! absence, or its own modification of it; nodes it has not touched yet it
//! sees live. It records the generation
//! seen at first touch; at commit, any touched node whose generation
//! changed (or that appeared or vanished) makes the commit fail with
//! `EAGAIN`, else its modifications are written to the live tree.

use std::collections::HashMap;

use super::path;
use crate::{DomId, Perm, PermKind};

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The value.
    pub value: Vec<u8>,
    /// Owner entry first, then ACL entries.
    pub perms: Vec<Perm>,
    /// Child names in creation order.
    pub children: Vec<String>,
    /// Generation of the last modification.
    pub generation: u64,
}

impl Node {
    /// The `\0`-terminated child list, as `XS_DIRECTORY` sends it.
    pub fn child_blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.children {
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        out
    }

    /// Record size as the C daemon accounts it for the node-size quota:
    /// header, 8 bytes per permission, value, child list.
    pub fn record_size(&self) -> usize {
        24 + 8 * self.perms.len() + self.value.len() + self.child_blob().len()
    }
}

/// Access rights of a domain on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
}

/// What `domid` may do on a node with `perms` (dom0 may do anything; the
/// owner everything; else its ACL entry, else the default of `perms[0]`).
pub fn access(domid: DomId, perms: &[Perm]) -> Access {
    let all = Access {
        read: true,
        write: true,
    };
    let Some(owner) = perms.first() else {
        return all;
    };
    if domid == 0 || owner.domid == domid {
        return all;
    }
    let kind = perms[1..]
        .iter()
        .find(|p| p.domid == domid)
        .map_or(owner.kind, |p| p.kind);
    Access {
        read: matches!(kind, PermKind::Read | PermKind::Both),
        write: matches!(kind, PermKind::Write | PermKind::Both),
    }
}

/// The first touch of a node by a transaction.
#[derive(Debug, Clone)]
pub struct Touched {
    /// The node.
    pub path: String,
    /// Its live generation at first touch; `None` if it did not exist.
    pub generation: Option<u64>,
    /// A watch event is due at commit: `Some(only)`, see
    /// [`Fire::only`](super::watch::Fire::only).
    pub fire: Option<bool>,
    /// Permissions of removed nodes (path and below), for event filtering.
    pub removed: HashMap<String, Vec<Perm>>,
}

/// An open transaction.
#[derive(Debug, Default)]
pub struct Txn {
    /// Nodes written (`Some`) or removed (`None`) by the transaction.
    pub overlay: HashMap<String, Option<Node>>,
    /// The nodes as first touched (`None`: missing then, and so missing
    /// for the transaction from then on).
    snapshot: HashMap<String, Option<Node>>,
    /// Nodes touched, in first-touch order.
    pub touched: Vec<Touched>,
    index: HashMap<String, usize>,
}

/// The live tree.
#[derive(Debug)]
pub struct Tree {
    nodes: HashMap<String, Node>,
    next_generation: u64,
}

fn root_perms() -> Vec<Perm> {
    vec![Perm::new(PermKind::None, 0)]
}

impl Tree {
    /// The tree a freshly started xenstored has: `/`, `/tool`,
    /// `/tool/xenstored`, all empty and owned by dom0.
    pub fn new() -> Tree {
        let mut t = Tree {
            nodes: HashMap::new(),
            next_generation: 1,
        };
        for (p, child) in [
            ("/", Some("tool")),
            ("/tool", Some("xenstored")),
            ("/tool/xenstored", None),
        ] {
            let generation = t.bump();
            t.nodes.insert(
                p.to_owned(),
                Node {
                    value: Vec::new(),
                    perms: root_perms(),
                    children: child.map(str::to_owned).into_iter().collect(),
                    generation,
                },
            );
        }
        t
    }

    /// Takes the next generation number. The C daemon takes one for every
    /// node write and deletion (also inside transactions, and again when a
    /// transaction's writes are committed) and one per transaction start;
    /// the numbers show in `DIRECTORY_PART` replies.
    pub fn bump(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// The live node at `path`.
    pub fn live(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Number of live nodes (including `/`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of live nodes owned by `domid` (for the node quota).
    pub fn count_owned(&self, domid: DomId) -> usize {
        self.nodes
            .values()
            .filter(|n| n.perms.first().is_some_and(|o| o.domid == domid))
            .count()
    }

    /// The node at `path` as the transaction (or the live tree) sees it.
    pub fn get<'a>(&'a self, tx: Option<&'a Txn>, path: &str) -> Option<&'a Node> {
        if let Some(t) = tx {
            if let Some(n) = t.overlay.get(path) {
                return n.as_ref();
            }
            if let Some(n) = t.snapshot.get(path) {
                return n.as_ref();
            }
        }
        self.nodes.get(path)
    }

    /// Records that the transaction touched `path` (first touch only).
    pub fn touch(&self, tx: Option<&mut Txn>, path: &str) {
        if let Some(t) = tx
            && !t.index.contains_key(path)
        {
            t.snapshot
                .insert(path.to_owned(), self.nodes.get(path).cloned());
            t.index.insert(path.to_owned(), t.touched.len());
            t.touched.push(Touched {
                path: path.to_owned(),
                generation: self.nodes.get(path).map(|n| n.generation),
                fire: None,
                removed: HashMap::new(),
            });
        }
    }

    /// Writes `node` at `path` (live, with a new generation, or into the
    /// transaction's overlay).
    pub fn put(&mut self, tx: Option<&mut Txn>, path: &str, mut node: Node) {
        match tx {
            Some(t) => {
                self.touch(Some(t), path);
                node.generation = self.bump();
                t.overlay.insert(path.to_owned(), Some(node));
            }
            None => {
                node.generation = self.bump();
                self.nodes.insert(path.to_owned(), node);
            }
        }
    }

    /// Removes the node at `path` (not its children: callers walk them).
    pub fn delete(&mut self, tx: Option<&mut Txn>, path: &str) {
        self.bump();
        match tx {
            Some(t) => {
                self.touch(Some(t), path);
                t.overlay.insert(path.to_owned(), None);
            }
            None => {
                self.nodes.remove(path);
            }
        }
    }

    /// Applies a transaction if nothing it touched changed since; `false`
    /// (nothing applied) on a conflict.
    pub fn commit(&mut self, tx: &Txn) -> bool {
        let unchanged = tx
            .touched
            .iter()
            .all(|t| self.nodes.get(&t.path).map(|n| n.generation) == t.generation);
        if !unchanged {
            return false;
        }
        for t in &tx.touched {
            match tx.overlay.get(&t.path) {
                Some(Some(node)) => {
                    let mut node = node.clone();
                    node.generation = self.bump();
                    self.nodes.insert(t.path.clone(), node);
                }
                Some(None) => {
                    self.nodes.remove(&t.path);
                }
                None => {}
            }
        }
        true
    }
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Txn {
    /// Marks `path` (already touched) for a watch event at commit; an
    /// event for the node and its ancestors replaces an exact-path one,
    /// not the other way round (as the daemon's `queue_watches`).
    pub fn queue_fire(&mut self, path: &str, only: bool, removed: HashMap<String, Vec<Perm>>) {
        if let Some(&i) = self.index.get(path) {
            let t = &mut self.touched[i];
            t.fire = Some(match t.fire {
                Some(false) => false,
                _ => only,
            });
            t.removed.extend(removed);
        }
    }
}

/// The live nodes, depth first in child order, whose owner is `domid`
/// (not descending into them): what a domain's release removes.
pub fn owned_roots(tree: &Tree, domid: DomId) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(p) = stack.pop() {
        let Some(n) = tree.live(&p) else { continue };
        if p != "/" && n.perms.first().is_some_and(|o| o.domid == domid) {
            out.push(p);
            continue;
        }
        for c in n.children.iter().rev() {
            stack.push(path::join(&p, c));
        }
    }
    out
}
