//! The whole store behind one lock: the tree, the connections (their
//! domain, watches, queued events, open transactions), the introduced
//! domains and the special nodes. [`State::handle`] runs one request of one
//! connection, exactly as the C xenstored 4.17 answers it.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::nodeops::{NodeCtx, Quotas, Want};
use super::path::{self, Canon};
use super::tree::{Tree, Txn};
use super::watch::{self, Fire, Watch};
use crate::{DomId, Errno, Perm, PermKind, WatchEvent};

/// A connection's id inside the store.
pub type ConnId = u64;

/// One request, decoded (paths as the client sent them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Read(String),
    Write(String, Vec<u8>),
    Mkdir(String),
    Rm(String),
    Directory(String),
    DirectoryPart(String, usize),
    GetPerms(String),
    SetPerms(String, Vec<Perm>),
    Watch(String, String),
    Unwatch(String, String),
    TransactionStart,
    TransactionEnd(bool),
    GetDomainPath(DomId),
    IsDomainIntroduced(DomId),
    Introduce(DomId),
    Release(DomId),
    Resume(DomId),
    SetTarget(DomId, DomId),
    ResetWatches,
    Control,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK`.
    Ok,
    /// A raw value (`READ`) or a prepared payload (`DIRECTORY_PART`).
    Raw(Vec<u8>),
    /// A list of names.
    List(Vec<String>),
    /// A permission list.
    Perms(Vec<Perm>),
    /// A single string (domain path, transaction id, `T`/`F`).
    Text(String),
}

#[derive(Debug)]
struct Conn {
    domid: DomId,
    watches: Vec<Watch>,
    events: VecDeque<WatchEvent>,
    txns: HashMap<u32, Txn>,
    next_tx: u32,
}

/// The store.
#[derive(Debug)]
pub struct State {
    tree: Tree,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    introduced: BTreeSet<DomId>,
    specials: HashMap<String, Vec<Perm>>,
    quotas: Quotas,
}

const SPECIALS: [&str; 2] = ["@introduceDomain", "@releaseDomain"];

impl State {
    /// A fresh store, as a just-started daemon: dom0 introduced.
    pub fn new(quotas: Quotas) -> State {
        State {
            tree: Tree::new(),
            conns: HashMap::new(),
            next_conn: 1,
            introduced: BTreeSet::from([0]),
            specials: SPECIALS
                .iter()
                .map(|s| ((*s).to_owned(), vec![Perm::new(PermKind::None, 0)]))
                .collect(),
            quotas,
        }
    }

    /// Opens a connection acting as `domid`.
    pub fn connect(&mut self, domid: DomId) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                domid,
                watches: Vec::new(),
                events: VecDeque::new(),
                txns: HashMap::new(),
                next_tx: 1,
            },
        );
        id
    }

    /// Closes a connection: its watches and transactions go.
    pub fn disconnect(&mut self, id: ConnId) {
        self.conns.remove(&id);
    }

    /// The next queued event of a connection.
    pub fn pop_event(&mut self, id: ConnId) -> Option<WatchEvent> {
        self.conns.get_mut(&id).and_then(|c| c.events.pop_front())
    }

    /// True if the connection has queued events.
    pub fn has_events(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| !c.events.is_empty())
    }

    /// Number of live nodes.
    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// Runs one request of connection `id` in transaction `tx` (0: none).
    pub fn handle(&mut self, id: ConnId, tx: u32, op: Op) -> Result<Reply, Errno> {
        let domid = self.conns.get(&id).map(|c| c.domid).ok_or(Errno::EINVAL)?;
        let privileged = domid == 0;
        let dom0_only = |r: Result<Reply, Errno>| if privileged { r } else { Err(Errno::EACCES) };
        match op {
            Op::Read(_)
            | Op::Write(..)
            | Op::Mkdir(_)
            | Op::Rm(_)
            | Op::Directory(_)
            | Op::DirectoryPart(..)
            | Op::GetPerms(_)
            | Op::SetPerms(..) => self.node_op(id, domid, tx, op),
            Op::Watch(p, token) => self.watch(id, domid, &p, token),
            Op::Unwatch(p, token) => {
                let c = path::canonicalize(domid, &p, true)?;
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                let before = conn.watches.len();
                conn.watches
                    .retain(|w| !(w.abs == c.abs && w.token == token));
                if conn.watches.len() == before {
                    return Err(Errno::ENOENT);
                }
                Ok(Reply::Ok)
            }
            Op::TransactionStart => {
                let quota = self.quotas.transactions;
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                if tx != 0 {
                    return Err(Errno::EBUSY);
                }
                if !privileged && conn.txns.len() > quota {
                    return Err(Errno::ENOSPC);
                }
                let t = conn.next_tx;
                conn.next_tx = conn.next_tx.wrapping_add(1).max(1);
                conn.txns.insert(t, Txn::default());
                self.tree.bump();
                Ok(Reply::Text(t.to_string()))
            }
            Op::TransactionEnd(commit) => self.end(id, tx, commit),
            Op::GetDomainPath(d) => Ok(Reply::Text(path::home(d))),
            Op::IsDomainIntroduced(d) => dom0_only(Ok(Reply::Text(
                if self.introduced.contains(&d) {
                    "T"
                } else {
                    "F"
                }
                .to_owned(),
            ))),
            Op::Introduce(d) => {
                if !privileged {
                    return Err(Errno::EACCES);
                }
                if self.introduced.insert(d) {
                    self.dispatch(vec![Fire::change("@introduceDomain")]);
                }
                Ok(Reply::Ok)
            }
            Op::Release(d) => {
                if !privileged {
                    return Err(Errno::EACCES);
                }
                if d == 0 {
                    return Err(Errno::EINVAL);
                }
                if !self.introduced.remove(&d) {
                    return Err(Errno::ENOENT);
                }
                self.remove_owned_by(d);
                self.dispatch(vec![Fire::change("@releaseDomain")]);
                Ok(Reply::Ok)
            }
            Op::Resume(d) => {
                if !privileged {
                    return Err(Errno::EACCES);
                }
                if d == 0 {
                    return Err(Errno::EINVAL);
                }
                if !self.introduced.contains(&d) {
                    return Err(Errno::ENOENT);
                }
                Ok(Reply::Ok)
            }
            Op::SetTarget(d, t) => {
                if !privileged {
                    return Err(Errno::EACCES);
                }
                if !self.introduced.contains(&d) || !self.introduced.contains(&t) {
                    return Err(Errno::ENOENT);
                }
                Ok(Reply::Ok)
            }
            Op::ResetWatches => {
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                conn.watches.clear();
                Ok(Reply::Ok)
            }
            Op::Control => dom0_only(Err(Errno::EINVAL)),
        }
    }

    fn watch(&mut self, id: ConnId, domid: DomId, p: &str, token: String) -> Result<Reply, Errno> {
        let Canon { abs, relative } = path::canonicalize(domid, p, true)?;
        let quota = self.quotas.watches;
        // The watch quota counts the domain's watches on all its connections.
        let domain_watches: usize = self
            .conns
            .values()
            .filter(|c| c.domid == domid)
            .map(|c| c.watches.len())
            .sum();
        let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
        if conn
            .watches
            .iter()
            .any(|w| w.abs == abs && w.token == token)
        {
            return Err(Errno::EEXIST);
        }
        if domid != 0 && domain_watches > quota {
            return Err(Errno::E2BIG);
        }
        let w = Watch {
            abs: abs.clone(),
            token,
            relative,
        };
        conn.events.push_back(watch::event_for(&w, domid, abs));
        conn.watches.push(w);
        Ok(Reply::Ok)
    }

    fn node_op(&mut self, id: ConnId, domid: DomId, tx: u32, op: Op) -> Result<Reply, Errno> {
        if let Op::SetPerms(p, perms) = &op
            && p.starts_with('@')
        {
            return self.set_special_perms(domid, p, perms);
        }
        let mut txn = match tx {
            0 => None,
            t => {
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                Some(conn.txns.remove(&t).ok_or(Errno::ENOENT)?)
            }
        };
        let result = self.node_op_in(domid, txn.as_mut(), op);
        if let (Some(t), Some(conn)) = (txn, self.conns.get_mut(&id)) {
            conn.txns.insert(tx, t);
        }
        let (reply, fires) = result?;
        self.dispatch(fires);
        Ok(reply)
    }

    fn node_op_in(
        &mut self,
        domid: DomId,
        tx: Option<&mut Txn>,
        op: Op,
    ) -> Result<(Reply, Vec<Fire>), Errno> {
        let mut ctx = NodeCtx {
            tree: &mut self.tree,
            tx,
            domid,
            quotas: self.quotas,
        };
        let abs = |p: &str| path::canonicalize(domid, p, false).map(|c| c.abs);
        Ok(match op {
            Op::Read(p) => (
                Reply::Raw(ctx.lookup(&abs(&p)?, Want::Read)?.value),
                Vec::new(),
            ),
            Op::Write(p, v) => (Reply::Ok, ctx.write(&abs(&p)?, Some(&v))?),
            Op::Mkdir(p) => (Reply::Ok, ctx.write(&abs(&p)?, None)?),
            Op::Rm(p) => (Reply::Ok, ctx.rm(&abs(&p)?)?),
            Op::Directory(p) => (Reply::List(ctx.directory(&abs(&p)?)?), Vec::new()),
            Op::DirectoryPart(p, off) => {
                (Reply::Raw(ctx.directory_part(&abs(&p)?, off)?), Vec::new())
            }
            Op::GetPerms(p) => (
                Reply::Perms(ctx.lookup(&abs(&p)?, Want::Read)?.perms),
                Vec::new(),
            ),
            Op::SetPerms(p, perms) => (Reply::Ok, ctx.set_perms(&abs(&p)?, &perms)?),
            _ => return Err(Errno::EINVAL),
        })
    }

    /// Removes every node owned by `domid` (with its subtree), as the
    /// daemon does when a domain is released (unless `-K`).
    fn remove_owned_by(&mut self, domid: DomId) {
        for root in super::tree::owned_roots(&self.tree, domid) {
            let mut ctx = NodeCtx {
                tree: &mut self.tree,
                tx: None,
                domid: 0,
                quotas: self.quotas,
            };
            match ctx.rm(&root) {
                Ok(fires) => self.dispatch(fires),
                Err(e) => log::debug!("removing {root} of released domain {domid}: {e}"),
            }
        }
    }

    fn set_special_perms(&mut self, domid: DomId, p: &str, perms: &[Perm]) -> Result<Reply, Errno> {
        if domid != 0 {
            return Err(Errno::EACCES);
        }
        let slot = self.specials.get_mut(p).ok_or(Errno::ENOENT)?;
        *slot = perms.to_vec();
        Ok(Reply::Ok)
    }

    fn end(&mut self, id: ConnId, tx: u32, commit: bool) -> Result<Reply, Errno> {
        let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
        let txn = conn.txns.remove(&tx).ok_or(Errno::ENOENT)?;
        if !commit {
            return Ok(Reply::Ok);
        }
        if !self.tree.commit(&txn) {
            return Err(Errno::EAGAIN);
        }
        let mut fires = Vec::new();
        for t in txn.touched {
            let Some(only) = t.fire else { continue };
            // A node created and removed inside the transaction: no event.
            if self.tree.live(&t.path).is_some() || t.generation.is_some() {
                fires.push(Fire {
                    path: t.path,
                    only,
                    removed: t.removed,
                });
            }
        }
        self.dispatch(fires);
        Ok(Reply::Ok)
    }

    /// Queues the events of `fires` on every connection whose watches match.
    fn dispatch(&mut self, fires: Vec<Fire>) {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for fire in &fires {
            for id in &ids {
                let Some(conn) = self.conns.get(id) else {
                    continue;
                };
                let mut out: Vec<WatchEvent> = Vec::new();
                for w in &conn.watches {
                    if let Some(p) = watch::matches(w, fire)
                        && watch::permitted(&self.tree, &self.specials, conn.domid, &p, fire)
                    {
                        let ev = watch::event_for(w, conn.domid, p);
                        // The daemon sends one event per (path, token)
                        // and change, however many watches match.
                        if !out.contains(&ev) {
                            out.push(ev);
                        }
                    }
                }
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.events.extend(out);
                }
            }
        }
    }
}
