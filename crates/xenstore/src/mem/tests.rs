//! Unit tests of the memory store, each case a behaviour measured on the
//! real xenstored 4.17 (the conformance suite re-checks them on both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::{Errno, PermKind, XenstoreExt};

const T0: TxId = TxId::NONE;

fn errno<T: std::fmt::Debug>(r: Result<T>) -> Errno {
    r.expect_err("expected an error").errno().expect("an errno")
}

fn events(c: &MemConn) -> Vec<(String, String)> {
    std::iter::from_fn(|| c.wait_event(Duration::from_millis(0)).unwrap())
        .map(|e| (e.path, e.token))
        .collect()
}

fn ev(p: &str, t: &str) -> (String, String) {
    (p.to_owned(), t.to_owned())
}

fn perms(s: &[&str]) -> Vec<Perm> {
    s.iter().map(|p| p.parse().unwrap()).collect()
}

#[test]
fn fresh_store_and_basic_ops() {
    let s = MemStore::new();
    let a = s.connect(0);
    assert_eq!(a.directory(T0, "/").unwrap(), vec!["tool"]);
    assert_eq!(a.read(T0, "/tool/xenstored").unwrap(), b"");
    a.write(T0, "/t/k", b"v1").unwrap();
    assert_eq!(a.read(T0, "/t/k").unwrap(), b"v1");
    assert_eq!(a.read(T0, "/t").unwrap(), b"");
    assert_eq!(errno(a.read(T0, "/t/none")), Errno::ENOENT);
    a.mkdir(T0, "/t/k").unwrap();
    assert_eq!(a.read(T0, "/t/k").unwrap(), b"v1", "mkdir keeps the value");
    for bad in ["", "/t/", "/t//k", "/t.k", "/t k"] {
        assert_eq!(errno(a.read(T0, bad)), Errno::EINVAL, "{bad:?}");
    }
    assert_eq!(errno(a.read(T0, "@introduceDomain")), Errno::EINVAL);
    a.write(T0, "rel/x", b"1").unwrap();
    assert_eq!(a.read(T0, "/local/domain/0/rel/x").unwrap(), b"1");
    assert_eq!(a.get_domain_path(7).unwrap(), "/local/domain/7");
}

#[test]
fn directory_order_is_creation_order() {
    let s = MemStore::new();
    let a = s.connect(0);
    for n in ["zz", "aa", "mm", "bb"] {
        a.write(T0, &format!("/o/{n}"), b"").unwrap();
    }
    a.rm(T0, "/o/aa").unwrap();
    a.write(T0, "/o/aa", b"").unwrap();
    assert_eq!(a.directory(T0, "/o").unwrap(), vec!["zz", "mm", "bb", "aa"]);
}

#[test]
fn rm_rules() {
    let s = MemStore::new();
    let a = s.connect(0);
    a.write(T0, "/o/a/b", b"").unwrap();
    a.rm(T0, "/o/none").unwrap();
    assert_eq!(errno(a.rm(T0, "/o/none/x")), Errno::ENOENT);
    assert_eq!(errno(a.rm(T0, "/")), Errno::EINVAL);
    a.rm(T0, "/o/a").unwrap();
    assert_eq!(errno(a.read(T0, "/o/a/b")), Errno::ENOENT);
    assert!(a.directory(T0, "/o").unwrap().is_empty());
}

#[test]
fn permissions_inherit_and_owner_rewrite() {
    let s = MemStore::new();
    let a = s.connect(0);
    a.write(T0, "/p", b"").unwrap();
    a.set_perms(T0, "/p", &perms(&["r5", "w7", "b0"])).unwrap();
    a.write(T0, "/p/c/d", b"").unwrap();
    assert_eq!(
        a.get_perms(T0, "/p/c/d").unwrap(),
        perms(&["r5", "w7", "b0"])
    );

    a.introduce(5).unwrap();
    let g = s.connect(5);
    a.mkdir(T0, "/g").unwrap();
    a.set_perms(T0, "/g", &perms(&["n0", "b5"])).unwrap();
    g.write(T0, "/g/y/z", b"1").unwrap();
    assert_eq!(a.get_perms(T0, "/g/y").unwrap(), perms(&["n5", "b5"]));
    assert_eq!(a.get_perms(T0, "/g/y/z").unwrap(), perms(&["n5", "b5"]));
    g.set_perms(T0, "/g/y", &perms(&["n5", "r0"])).unwrap();
    assert_eq!(
        errno(g.set_perms(T0, "/g/y", &perms(&["b7"]))),
        Errno::EPERM
    );
}

#[test]
fn guest_access_rules() {
    let s = MemStore::new();
    let a = s.connect(0);
    let g = s.connect(5);
    for (p, pr) in [("/r5", "r5"), ("/w5", "w5"), ("/n5", "n0")] {
        a.mkdir(T0, p).unwrap();
        a.set_perms(T0, p, &[Perm::new(PermKind::None, 0), pr.parse().unwrap()])
            .unwrap();
    }
    a.mkdir(T0, "/o5").unwrap();
    a.set_perms(T0, "/o5", &perms(&["r0"])).unwrap();
    assert_eq!(errno(g.write(T0, "/r5/x", b"1")), Errno::EACCES);
    assert_eq!(errno(g.read(T0, "/w5/none")), Errno::EACCES);
    assert_eq!(errno(g.read(T0, "/w5")), Errno::EACCES);
    g.write(T0, "/w5/a/b", b"1").unwrap();
    assert_eq!(a.get_perms(T0, "/w5/a").unwrap(), perms(&["n5", "w5"]));
    assert_eq!(errno(g.read(T0, "/o5/none")), Errno::ENOENT);
    assert_eq!(g.read(T0, "/o5").unwrap(), b"");
    assert_eq!(errno(g.write(T0, "/o5/q", b"1")), Errno::EACCES);
    assert_eq!(errno(g.rm(T0, "/r5/none")), Errno::EACCES);
    g.rm(T0, "/w5/none").unwrap();
    assert_eq!(errno(g.rm(T0, "/n5/none")), Errno::EACCES);
    assert_eq!(errno(g.get_perms(T0, "/r5/none")), Errno::ENOENT);
    assert_eq!(errno(g.read(T0, "/tool/none")), Errno::EACCES);
    assert_eq!(errno(g.introduce(6)), Errno::EACCES);
    assert_eq!(errno(g.is_domain_introduced(0)), Errno::EACCES);
    assert_eq!(errno(g.write(T0, "foo", b"1")), Errno::EACCES);
    assert_eq!(g.get_domain_path(3).unwrap(), "/local/domain/3");
}

#[test]
fn watch_events_initial_subtree_and_rm() {
    let s = MemStore::new();
    let a = s.connect(0);
    let b = s.connect(0);
    a.write(T0, "/r/a/b/c", b"1").unwrap();
    b.watch("/r/a/b/c", "deep").unwrap();
    b.watch("/r/a", "top").unwrap();
    b.watch("/r", "root").unwrap();
    assert_eq!(
        events(&b),
        vec![ev("/r/a/b/c", "deep"), ev("/r/a", "top"), ev("/r", "root")]
    );
    assert_eq!(errno(b.watch("/r", "root")), Errno::EEXIST);
    a.rm(T0, "/r/a").unwrap();
    assert_eq!(
        events(&b),
        vec![
            ev("/r/a/b/c", "deep"),
            ev("/r/a", "top"),
            ev("/r/a", "root")
        ]
    );
    a.write(T0, "/r/a/b/c", b"1").unwrap();
    assert_eq!(events(&b).len(), 3, "write fires every ancestor watch once");
    a.mkdir(T0, "/r/a/b/c").unwrap();
    a.rm(T0, "/r/a/zz").unwrap();
    assert!(
        events(&b).is_empty(),
        "mkdir of existing / rm of missing fire nothing"
    );
    a.set_perms(T0, "/r/a", &perms(&["n0"])).unwrap();
    assert_eq!(events(&b), vec![ev("/r/a", "top"), ev("/r/a", "root")]);
    b.unwatch("/r", "root").unwrap();
    assert_eq!(errno(b.unwatch("/r", "root")), Errno::ENOENT);
    b.watch("/", "slash").unwrap();
    a.write(T0, "/r/q", b"").unwrap();
    assert_eq!(events(&b), vec![ev("/", "slash"), ev("/r/q", "slash")]);
    a.watch("rel/w", "tr").unwrap();
    a.write(T0, "/local/domain/0/rel/w/x", b"1").unwrap();
    assert_eq!(events(&a), vec![ev("rel/w", "tr"), ev("rel/w/x", "tr")]);
}

#[test]
fn guest_watch_events_are_filtered_by_read_permission() {
    let s = MemStore::new();
    let a = s.connect(0);
    let g = s.connect(5);
    a.mkdir(T0, "/r5").unwrap();
    a.set_perms(T0, "/r5", &perms(&["n0", "r5"])).unwrap();
    a.mkdir(T0, "/n5").unwrap();
    a.set_perms(T0, "/n5", &perms(&["n0"])).unwrap();
    a.write(T0, "/r5/del", b"1").unwrap();
    a.set_perms(T0, "/r5/del", &perms(&["n0"])).unwrap();
    a.write(T0, "/n5/x/y", b"1").unwrap();
    a.set_perms(T0, "/n5/x/y", &perms(&["n0", "r5"])).unwrap();
    for (i, p) in ["/r5/none", "/n5/none", "/r5/del", "/n5", "/n5/x/y"]
        .iter()
        .enumerate()
    {
        g.watch(p, &format!("g{i}")).unwrap();
    }
    assert_eq!(events(&g).len(), 5, "initial events are always sent");
    a.rm(T0, "/r5/del").unwrap();
    a.write(T0, "/r5/none", b"1").unwrap();
    a.write(T0, "/n5/none", b"1").unwrap();
    a.write(T0, "/n5/x/y/z", b"1").unwrap();
    a.rm(T0, "/n5/x").unwrap();
    assert_eq!(
        events(&g),
        vec![
            ev("/r5/del", "g2"),
            ev("/r5/none", "g0"),
            ev("/n5/x/y/z", "g3"),
            ev("/n5/x/y/z", "g4"),
            ev("/n5/x/y", "g4"),
        ]
    );
}

#[test]
fn transactions_conflicts_like_the_daemon() {
    let s = MemStore::new();
    let a = s.connect(0);
    let b = s.connect(0);
    a.write(T0, "/t/c", b"0").unwrap();
    let conflict = |setup: &dyn Fn(TxId), outside: &dyn Fn()| {
        let t = a.transaction_start().unwrap();
        setup(t);
        outside();
        a.transaction_end(t, true).err().and_then(|e| e.errno())
    };
    let eagain = Some(Errno::EAGAIN);
    assert_eq!(
        conflict(
            &|t| {
                a.read(t, "/t/c").unwrap();
            },
            &|| b.write(T0, "/t/c", b"0").unwrap()
        ),
        eagain
    );
    assert_eq!(
        conflict(
            &|t| {
                a.read(t, "/t/c").unwrap();
            },
            &|| b.mkdir(T0, "/t/c").unwrap()
        ),
        None
    );
    assert_eq!(
        conflict(
            &|t| {
                let _ = a.read(t, "/t/n0");
            },
            &|| b.write(T0, "/t/n0", b"").unwrap()
        ),
        eagain
    );
    assert_eq!(
        conflict(&|t| a.write(t, "/t/n1", b"").unwrap(), &|| b
            .write(T0, "/t/n2", b"")
            .unwrap()),
        eagain
    );
    assert_eq!(
        conflict(&|t| a.write(t, "/t/c", b"5").unwrap(), &|| b
            .write(T0, "/t/n3", b"")
            .unwrap()),
        None
    );
    assert_eq!(
        conflict(
            &|t| {
                a.directory(t, "/t").unwrap();
            },
            &|| b.write(T0, "/t/c", b"9").unwrap()
        ),
        None
    );
    assert_eq!(
        conflict(
            &|t| {
                a.directory(t, "/t").unwrap();
            },
            &|| {
                b.write(T0, "/t/z", b"").unwrap();
                b.rm(T0, "/t/z").unwrap();
            }
        ),
        eagain
    );
    assert_eq!(
        conflict(
            &|t| {
                let _ = a.read(t, "/t/c/sub");
            },
            &|| b.rm(T0, "/t/c").unwrap()
        ),
        eagain
    );
    // isolation of the transaction's own writes; a node is seen as it was
    // when first touched, an untouched one live
    a.write(T0, "/t/c", b"0").unwrap();
    a.write(T0, "/t/d", b"0").unwrap();
    let t = a.transaction_start().unwrap();
    a.write(t, "/t/mine", b"1").unwrap();
    assert_eq!(a.read(t, "/t/mine").unwrap(), b"1");
    assert_eq!(errno(a.read(T0, "/t/mine")), Errno::ENOENT);
    a.read(t, "/t/c").unwrap();
    assert_eq!(errno(a.read(t, "/t/new")), Errno::ENOENT);
    b.write(T0, "/t/c", b"live").unwrap();
    b.write(T0, "/t/d", b"live").unwrap();
    b.write(T0, "/t/new", b"live").unwrap();
    assert_eq!(
        a.read(t, "/t/c").unwrap(),
        b"0",
        "copy taken at first touch"
    );
    assert_eq!(
        errno(a.read(t, "/t/new")),
        Errno::ENOENT,
        "missing stays missing"
    );
    assert_eq!(a.read(t, "/t/d").unwrap(), b"live", "untouched: live");
    assert_eq!(errno(a.transaction_end(t, true)), Errno::EAGAIN);
    assert_eq!(errno(a.transaction_end(t, true)), Errno::ENOENT);
    let t = a.transaction_start().unwrap();
    assert_eq!(
        errno(b.read(t, "/t/c")),
        Errno::ENOENT,
        "transactions are per connection"
    );
    a.write(t, "/t/aborted", b"1").unwrap();
    a.transaction_end(t, false).unwrap();
    assert_eq!(errno(a.read(T0, "/t/aborted")), Errno::ENOENT);
}

#[test]
fn transaction_events_fire_at_commit_in_first_touch_order() {
    let s = MemStore::new();
    let a = s.connect(0);
    let b = s.connect(0);
    a.write(T0, "/ev/a", b"1").unwrap();
    a.write(T0, "/ev/p/c", b"1").unwrap();
    a.write(T0, "/ev/x", b"1").unwrap();
    b.watch("/ev", "e").unwrap();
    events(&b);
    let t = a.transaction_start().unwrap();
    a.read(t, "/ev/a").unwrap();
    a.write(t, "/ev/b", b"1").unwrap();
    a.write(t, "/ev/a", b"2").unwrap();
    a.write(t, "/ev/n", b"1").unwrap();
    a.rm(t, "/ev/n").unwrap();
    assert!(events(&b).is_empty(), "nothing before commit");
    a.transaction_end(t, true).unwrap();
    assert_eq!(events(&b), vec![ev("/ev/a", "e"), ev("/ev/b", "e")]);
    let t = a.transaction_start().unwrap();
    a.write(t, "/ev/p/c", b"2").unwrap();
    a.rm(t, "/ev/p").unwrap();
    a.write(t, "/ev/x", b"2").unwrap();
    a.rm(t, "/ev/x").unwrap();
    a.mkdir(t, "/ev/a").unwrap();
    a.transaction_end(t, true).unwrap();
    assert_eq!(
        events(&b),
        vec![ev("/ev/p/c", "e"), ev("/ev/p", "e"), ev("/ev/x", "e")]
    );
}

#[test]
fn domains_and_special_watches() {
    let s = MemStore::new();
    let a = s.connect(0);
    let g = s.connect(5);
    a.watch("@introduceDomain", "i").unwrap();
    a.watch("@releaseDomain", "r").unwrap();
    g.watch("@releaseDomain", "gr").unwrap();
    assert_eq!(events(&a).len(), 2);
    assert_eq!(events(&g).len(), 1);
    assert!(!a.is_domain_introduced(6).unwrap());
    a.introduce(6).unwrap();
    a.introduce(6).unwrap();
    assert_eq!(events(&a), vec![ev("@introduceDomain", "i")]);
    assert!(a.is_domain_introduced(6).unwrap());
    a.release(6).unwrap();
    assert_eq!(events(&a), vec![ev("@releaseDomain", "r")]);
    assert!(events(&g).is_empty(), "special events need read permission");
    assert_eq!(errno(a.release(6)), Errno::ENOENT);
    assert_eq!(errno(a.release(0)), Errno::EINVAL);
    a.set_perms(T0, "@releaseDomain", &perms(&["n0", "r5"]))
        .unwrap();
    a.introduce(6).unwrap();
    a.release(6).unwrap();
    assert_eq!(events(&g), vec![ev("@releaseDomain", "gr")]);
}

#[test]
fn large_directories_and_limits() {
    let s = MemStore::new();
    let a = s.connect(0);
    for i in 0..300 {
        a.write(T0, &format!("/big/child-number-{i:04}"), b"")
            .unwrap();
    }
    let names = a.directory(T0, "/big").unwrap();
    assert_eq!(names.len(), 300);
    assert_eq!(names[299], "child-number-0299");
    let st = &s;
    let id = st.raw_connect(0);
    let part = st
        .handle(id, 0, Op::DirectoryPart("/big".into(), 0))
        .unwrap();
    let Reply::Raw(p) = part else { panic!() };
    assert_eq!(p.len(), 4 + 227 * 18, "as many names as fit, no terminator");
    let Reply::Raw(p) = st
        .handle(id, 0, Op::DirectoryPart("/big".into(), 227 * 18))
        .unwrap()
    else {
        panic!()
    };
    assert!(p.ends_with(b"child-number-0299\0\0"));
    assert_eq!(
        st.handle(id, 0, Op::Directory("/big".into())),
        Err(Errno::E2BIG)
    );
    let long = format!("/{}", "x".repeat(2047));
    a.write(T0, &long, b"").unwrap();
    assert_eq!(errno(a.write(T0, &format!("{long}x"), b"")), Errno::EINVAL);
    assert_eq!(errno(a.write(T0, &"r".repeat(2049), b"")), Errno::EINVAL);
}

#[test]
fn guest_quotas() {
    let s = MemStore::new();
    let a = s.connect(0);
    a.mkdir(T0, "/local/domain/5").unwrap();
    a.set_perms(T0, "/local/domain/5", &perms(&["n5"])).unwrap();
    let g = s.connect(5);
    let mut txs = Vec::new();
    let err = loop {
        match g.transaction_start() {
            Ok(t) => txs.push(t),
            Err(e) => break e,
        }
    };
    assert_eq!((txs.len(), err.errno()), (11, Some(Errno::ENOSPC)));
    let n = (0..200)
        .take_while(|i| g.watch(&format!("w{i}"), "t").is_ok())
        .count();
    assert_eq!(n, 129);
    assert_eq!(errno(g.write(T0, "big", &[b'x'; 2100])), Errno::ENOSPC);
    a.write(T0, "/local/domain/5/dom0-big", &[b'x'; 4000])
        .unwrap();
}

#[test]
fn wait_event_wakes_on_other_connection() {
    let s = MemStore::new();
    let a = s.connect(0);
    a.watch("/w", "t").unwrap();
    assert!(a.wait_event(Duration::from_millis(0)).unwrap().is_some());
    let s2 = s.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        s2.connect(0).write_str(T0, "/w/x", "1").unwrap();
    });
    let e = a.wait_event(Duration::from_secs(5)).unwrap();
    h.join().unwrap();
    assert_eq!(e.map(|e| e.path), Some("/w/x".to_owned()));
    assert_eq!(a.wait_event(Duration::from_millis(20)).unwrap(), None);
}

#[test]
fn oversized_write_is_refused_like_a_socket_client() {
    let s = MemStore::new();
    let a = s.connect(0);
    a.write(T0, "/v", &[b'x'; 4093]).unwrap();
    let e = a.write(T0, "/v", &[b'x'; 4094]).unwrap_err();
    assert!(matches!(e, Error::PayloadTooLarge { len: 4097, .. }), "{e}");
    assert_eq!(a.read(T0, "/v").unwrap().len(), 4093);
}
