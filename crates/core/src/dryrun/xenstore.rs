//! A xenstore connection that changes nothing: reads reach the real store,
//! writes, `mkdir`, `rm` and permission changes stay in an in-memory
//! overlay (later reads of the same command see them, inside and outside
//! transactions) and are recorded in the [`Plan`].
//!
//! Transactions are not started on the real store: each gets a copy of the
//! overlay; a commit makes the copy the overlay and records its changes
//! between [`Effect::TransactionStart`] and [`Effect::TransactionCommit`];
//! an abort drops both. Reads inside a transaction see the real store as it
//! is now (no snapshot), so a dry run never sees `EAGAIN`.
//!
//! Watches are passed through: registering one changes no node.
//!
//! Without a plan ([`DryXenstore::real`]) every call goes straight to the
//! connection: a real run makes exactly the requests it made before.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use vusb_xenstore::{Errno, Error, Perm, Result, TxId, WatchEvent, Xenstore, XenstoreWatch};

use super::{Effect, Plan};

#[derive(Debug, Clone)]
enum Node {
    /// The node exists with this value. `fresh`: created by the plan, so
    /// nothing of the real store below it is visible (it did not exist, or
    /// was removed first). `perms`: set by the plan (`None`: the real
    /// node's, or the parent's for a fresh one, as xenstored inherits).
    Present {
        value: Vec<u8>,
        perms: Option<Vec<Perm>>,
        fresh: bool,
    },
    /// Removed by the plan, with its subtree.
    Removed,
}

type Overlay = BTreeMap<String, Node>;

enum View<'o> {
    Planned(&'o Node),
    Hidden,
    Real,
}

fn view<'o>(ov: &'o Overlay, path: &str) -> View<'o> {
    if let Some(n) = ov.get(path) {
        return View::Planned(n);
    }
    let mut cur = path;
    while let Some((parent, _)) = cur.rsplit_once('/') {
        match ov.get(parent) {
            Some(Node::Removed | Node::Present { fresh: true, .. }) => return View::Hidden,
            Some(Node::Present { fresh: false, .. }) => return View::Real,
            None => cur = parent,
        }
    }
    View::Real
}

fn enoent(op: &'static str, path: &str) -> Error {
    Error::Daemon {
        op,
        path: path.to_owned(),
        errno: Errno::ENOENT,
    }
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some(("", _)) | None => None,
        Some((p, _)) => Some(p),
    }
}

#[derive(Debug, Default)]
struct State {
    base: Overlay,
    txs: HashMap<u32, (Overlay, Vec<Effect>)>,
    next_tx: u32,
}

/// A xenstore connection that, given a plan, changes nothing (see the
/// module documentation); without one, the connection itself.
#[derive(Debug)]
pub struct DryXenstore<X> {
    real: X,
    plan: Option<Plan>,
    state: Mutex<State>,
}

impl<X> DryXenstore<X> {
    /// Wrap `real`, recording into `plan` when it is `Some`.
    pub fn new(real: X, plan: Option<Plan>) -> Self {
        DryXenstore {
            real,
            plan,
            state: Mutex::new(State::default()),
        }
    }

    /// The connection itself, changing the store for real.
    pub fn real(real: X) -> Self {
        DryXenstore::new(real, None)
    }

    /// The plan changes are recorded in, in a dry run.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The wrapped connection (reads through it bypass the overlay).
    pub fn inner(&self) -> &X {
        &self.real
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<X: Xenstore> DryXenstore<X> {
    /// Run `f` on the overlay of `tx` (the base one for [`TxId::NONE`]);
    /// an unknown transaction is `ENOENT`, as xenstored says.
    fn with<T>(
        &self,
        tx: TxId,
        f: impl FnOnce(&Self, &mut Overlay, &mut Vec<Effect>) -> Result<T>,
    ) -> Result<T> {
        let mut st = self.lock();
        if tx == TxId::NONE {
            let mut out = Vec::new();
            let r = f(self, &mut st.base, &mut out);
            drop(st);
            if let Some(plan) = &self.plan {
                plan.record_all(out);
            }
            return r;
        }
        let Some((ov, effects)) = st.txs.get_mut(&tx.0) else {
            return Err(enoent("TRANSACTION", "(transaction)"));
        };
        f(self, ov, effects)
    }

    fn exists(&self, ov: &Overlay, path: &str) -> Result<bool> {
        match view(ov, path) {
            View::Planned(Node::Present { .. }) => Ok(true),
            View::Planned(Node::Removed) | View::Hidden => Ok(false),
            View::Real => match self.real.read(TxId::NONE, path) {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    fn read_in(&self, ov: &Overlay, path: &str) -> Result<Vec<u8>> {
        match view(ov, path) {
            View::Planned(Node::Present { value, .. }) => Ok(value.clone()),
            View::Planned(Node::Removed) | View::Hidden => Err(enoent("READ", path)),
            View::Real => self.real.read(TxId::NONE, path),
        }
    }

    /// Create the missing parents of `path` (empty, fresh), as a write does.
    fn create_parents(&self, ov: &mut Overlay, path: &str) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = path;
        while let Some(parent) = parent_of(cur) {
            if self.exists(ov, parent)? {
                break;
            }
            missing.push(parent.to_owned());
            cur = parent;
        }
        for p in missing.into_iter().rev() {
            ov.insert(
                p,
                Node::Present {
                    value: Vec::new(),
                    perms: None,
                    fresh: true,
                },
            );
        }
        Ok(())
    }

    fn set_value(&self, ov: &mut Overlay, path: &str, value: &[u8]) -> Result<()> {
        let existed = self.exists(ov, path)?;
        self.create_parents(ov, path)?;
        let node = match ov.remove(path) {
            Some(Node::Present { perms, fresh, .. }) => Node::Present {
                value: value.to_vec(),
                perms,
                fresh,
            },
            _ => Node::Present {
                value: value.to_vec(),
                perms: None,
                fresh: !existed,
            },
        };
        ov.insert(path.to_owned(), node);
        Ok(())
    }

    fn perms_in(&self, ov: &Overlay, path: &str) -> Result<Vec<Perm>> {
        match view(ov, path) {
            View::Planned(Node::Present { perms: Some(p), .. }) => Ok(p.clone()),
            View::Planned(Node::Present { fresh: true, .. }) => match parent_of(path) {
                Some(parent) => self.perms_in(ov, parent),
                None => self.real.get_perms(TxId::NONE, path),
            },
            View::Planned(Node::Present { .. }) | View::Real => {
                self.real.get_perms(TxId::NONE, path)
            }
            View::Planned(Node::Removed) | View::Hidden => Err(enoent("GET_PERMS", path)),
        }
    }
}

impl<X: Xenstore> Xenstore for DryXenstore<X> {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>> {
        if self.plan.is_none() {
            return self.real.read(tx, path);
        }
        self.with(tx, |me, ov, _| me.read_in(ov, path))
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()> {
        if self.plan.is_none() {
            return self.real.write(tx, path, value);
        }
        self.with(tx, |me, ov, effects| {
            me.set_value(ov, path, value)?;
            effects.push(Effect::XenstoreWrite {
                path: path.to_owned(),
                value: value.to_vec(),
            });
            Ok(())
        })
    }

    fn mkdir(&self, tx: TxId, path: &str) -> Result<()> {
        if self.plan.is_none() {
            return self.real.mkdir(tx, path);
        }
        self.with(tx, |me, ov, effects| {
            if me.exists(ov, path)? {
                return Ok(());
            }
            me.set_value(ov, path, b"")?;
            effects.push(Effect::XenstoreMkdir {
                path: path.to_owned(),
            });
            Ok(())
        })
    }

    fn rm(&self, tx: TxId, path: &str) -> Result<()> {
        if self.plan.is_none() {
            return self.real.rm(tx, path);
        }
        self.with(tx, |me, ov, effects| {
            if !me.exists(ov, path)? {
                // xenstored: removing a missing node is fine when its
                // parent exists, `ENOENT` otherwise.
                return match parent_of(path) {
                    Some(p) if me.exists(ov, p)? => Ok(()),
                    _ => Err(enoent("RM", path)),
                };
            }
            let below = format!("{path}/");
            ov.retain(|k, _| !k.starts_with(&below));
            ov.insert(path.to_owned(), Node::Removed);
            effects.push(Effect::XenstoreRm {
                path: path.to_owned(),
            });
            Ok(())
        })
    }

    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>> {
        if self.plan.is_none() {
            return self.real.directory(tx, path);
        }
        self.with(tx, |me, ov, _| {
            let mut names = match view(ov, path) {
                View::Planned(Node::Removed) | View::Hidden => {
                    return Err(enoent("DIRECTORY", path));
                }
                View::Planned(Node::Present { fresh: true, .. }) => Vec::new(),
                View::Planned(Node::Present { .. }) => match me.real.directory(TxId::NONE, path) {
                    Err(e) if e.is_not_found() => Vec::new(),
                    other => other?,
                },
                View::Real => me.real.directory(TxId::NONE, path)?,
            };
            let below = format!("{path}/");
            names.retain(|n| !matches!(ov.get(&format!("{below}{n}")), Some(Node::Removed)));
            for (k, node) in ov.range(below.clone()..) {
                let Some(name) = k.strip_prefix(&below) else {
                    break;
                };
                if !name.contains('/')
                    && matches!(node, Node::Present { .. })
                    && !names.iter().any(|n| n == name)
                {
                    names.push(name.to_owned());
                }
            }
            Ok(names)
        })
    }

    fn get_perms(&self, tx: TxId, path: &str) -> Result<Vec<Perm>> {
        if self.plan.is_none() {
            return self.real.get_perms(tx, path);
        }
        self.with(tx, |me, ov, _| me.perms_in(ov, path))
    }

    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()> {
        if self.plan.is_none() {
            return self.real.set_perms(tx, path, perms);
        }
        self.with(tx, |me, ov, effects| {
            let value = me
                .read_in(ov, path)
                .map_err(|_| enoent("SET_PERMS", path))?;
            let fresh = matches!(ov.get(path), Some(Node::Present { fresh: true, .. }));
            ov.insert(
                path.to_owned(),
                Node::Present {
                    value,
                    perms: Some(perms.to_vec()),
                    fresh,
                },
            );
            effects.push(Effect::XenstoreSetPerms {
                path: path.to_owned(),
                perms: perms.to_vec(),
            });
            Ok(())
        })
    }

    fn transaction_start(&self) -> Result<TxId> {
        if self.plan.is_none() {
            return self.real.transaction_start();
        }
        let mut st = self.lock();
        st.next_tx = st.next_tx.wrapping_add(1).max(1);
        let id = st.next_tx;
        let copy = st.base.clone();
        st.txs.insert(id, (copy, Vec::new()));
        Ok(TxId(id))
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<()> {
        if self.plan.is_none() {
            return self.real.transaction_end(tx, commit);
        }
        let mut st = self.lock();
        let Some((ov, effects)) = st.txs.remove(&tx.0) else {
            return Err(enoent("TRANSACTION_END", "(transaction)"));
        };
        if !commit {
            return Ok(());
        }
        st.base = ov;
        drop(st);
        if let Some(plan) = self.plan.as_ref().filter(|_| !effects.is_empty()) {
            let mut all = Vec::with_capacity(effects.len() + 2);
            all.push(Effect::TransactionStart);
            all.extend(effects);
            all.push(Effect::TransactionCommit);
            plan.record_all(all);
        }
        Ok(())
    }
}

impl<X: XenstoreWatch> XenstoreWatch for DryXenstore<X> {
    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.real.watch(path, token)
    }
    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.real.unwatch(path, token)
    }
    fn wait_event(&self, timeout: Duration) -> Result<Option<WatchEvent>> {
        self.real.wait_event(timeout)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vusb_xenstore::XenstoreExt;
    use vusb_xenstore::mem::MemStore;

    fn store() -> vusb_xenstore::mem::MemConn {
        let m = MemStore::new().connect(0);
        m.write(TxId::NONE, "/a/b", b"1").unwrap();
        m.write(TxId::NONE, "/a/c", b"2").unwrap();
        m
    }

    #[test]
    fn changes_stay_in_the_overlay_and_are_recorded() {
        let real = store();
        let plan = Plan::new();
        let xs = plan.xenstore(&real);
        xs.write(TxId::NONE, "/a/d/e", b"3").unwrap();
        xs.rm(TxId::NONE, "/a/b").unwrap();
        assert_eq!(
            xs.read_opt(TxId::NONE, "/a/d/e").unwrap().as_deref(),
            Some("3")
        );
        assert_eq!(xs.read_opt(TxId::NONE, "/a/b").unwrap(), None);
        assert_eq!(xs.directory(TxId::NONE, "/a").unwrap(), ["c", "d"]);
        // The real store is untouched.
        assert_eq!(
            real.read_opt(TxId::NONE, "/a/b").unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(real.read_opt(TxId::NONE, "/a/d").unwrap(), None);
        let lines: Vec<String> = plan.effects().iter().map(|e| e.to_string()).collect();
        assert_eq!(lines, ["xenstore write /a/d/e = \"3\"", "xenstore rm /a/b"]);
    }

    #[test]
    fn a_removed_then_rewritten_node_hides_the_real_subtree() {
        let real = store();
        let plan = Plan::new();
        let xs = plan.xenstore(&real);
        xs.rm(TxId::NONE, "/a").unwrap();
        xs.write(TxId::NONE, "/a/x", b"").unwrap();
        assert_eq!(xs.directory(TxId::NONE, "/a").unwrap(), ["x"]);
        assert_eq!(xs.read_opt(TxId::NONE, "/a/b").unwrap(), None);
    }

    #[test]
    fn transactions_commit_into_the_plan_or_vanish() {
        let real = store();
        let plan = Plan::new();
        let xs = plan.xenstore(&real);
        let t = xs.transaction_start().unwrap();
        xs.write(t, "/a/b", b"9").unwrap();
        assert_eq!(
            xs.read_opt(TxId::NONE, "/a/b").unwrap().as_deref(),
            Some("1")
        );
        xs.transaction_end(t, false).unwrap();
        assert!(plan.effects().is_empty());
        let t = xs.transaction_start().unwrap();
        xs.write(t, "/a/b", b"9").unwrap();
        xs.transaction_end(t, true).unwrap();
        assert_eq!(
            xs.read_opt(TxId::NONE, "/a/b").unwrap().as_deref(),
            Some("9")
        );
        assert_eq!(plan.effects().len(), 3);
        assert_eq!(
            real.read_opt(TxId::NONE, "/a/b").unwrap().as_deref(),
            Some("1")
        );
    }

    #[test]
    fn new_nodes_inherit_perms_and_set_perms_is_recorded() {
        let real = store();
        let p = vec![Perm::new(vusb_xenstore::PermKind::None, 0)];
        real.set_perms(TxId::NONE, "/a", &p).unwrap();
        let plan = Plan::new();
        let xs = plan.xenstore(&real);
        xs.mkdir(TxId::NONE, "/a/n").unwrap();
        assert_eq!(xs.get_perms(TxId::NONE, "/a/n").unwrap(), p);
        let q = vec![Perm::new(vusb_xenstore::PermKind::Read, 3)];
        xs.set_perms(TxId::NONE, "/a/n", &q).unwrap();
        assert_eq!(xs.get_perms(TxId::NONE, "/a/n").unwrap(), q);
        assert!(xs.set_perms(TxId::NONE, "/nope/x", &q).is_err());
        assert_eq!(plan.effects().len(), 2);
    }
}
