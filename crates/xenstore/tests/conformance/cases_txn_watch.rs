//! Transactions (visibility, conflicts between connections) and watches
//! (initial event, subtree, removal, ordering, commit-time events, special
//! watches).

use super::backend::Backend;
use super::raw::{Raw, ty, z};
use super::*;

pub fn transaction_commit_abort_visibility(b: &dyn Backend) {
    let a = b.dom0();
    let o = b.dom0();
    a.write(T0, "/t/c", b"0").unwrap();
    let t = a.transaction_start().unwrap();
    assert_ne!(t, T0);
    a.write(t, "/t/mine", b"1").unwrap();
    a.write(t, "/t/c", b"1").unwrap();
    assert_eq!(
        a.read(t, "/t/mine").unwrap(),
        b"1",
        "own write visible inside"
    );
    assert_eq!(
        errno(o.read(T0, "/t/mine")),
        Errno::ENOENT,
        "invisible outside"
    );
    assert_eq!(o.read(T0, "/t/c").unwrap(), b"0");
    assert_eq!(a.directory(t, "/t").unwrap(), ["c", "mine"]);
    a.rm(t, "/t/mine").unwrap();
    assert_eq!(errno(a.read(t, "/t/mine")), Errno::ENOENT);
    a.transaction_end(t, true).unwrap();
    assert_eq!(o.read(T0, "/t/c").unwrap(), b"1");
    assert_eq!(errno(o.read(T0, "/t/mine")), Errno::ENOENT);
    let t = a.transaction_start().unwrap();
    a.write(t, "/t/aborted", b"1").unwrap();
    a.transaction_end(t, false).unwrap();
    assert_eq!(errno(o.read(T0, "/t/aborted")), Errno::ENOENT);
    assert_eq!(errno(a.transaction_end(t, true)), Errno::ENOENT, "ended");
    assert_eq!(
        errno(a.read(TxId(99999), "/t/c")),
        Errno::ENOENT,
        "unknown id"
    );
    let t = a.transaction_start().unwrap();
    assert_eq!(
        errno(o.read(t, "/t/c")),
        Errno::ENOENT,
        "ids are per connection"
    );
    a.transaction_end(t, false).unwrap();
    // A node is seen as it was when the transaction first touched it.
    o.write(T0, "/t/d", b"0").unwrap();
    let t = a.transaction_start().unwrap();
    assert_eq!(a.read(t, "/t/c").unwrap(), b"1");
    assert_eq!(errno(a.read(t, "/t/new")), Errno::ENOENT);
    o.write(T0, "/t/c", b"live").unwrap();
    o.write(T0, "/t/d", b"live").unwrap();
    o.write(T0, "/t/new", b"live").unwrap();
    assert_eq!(
        a.read(t, "/t/c").unwrap(),
        b"1",
        "copy taken at first touch"
    );
    assert_eq!(
        errno(a.read(t, "/t/new")),
        Errno::ENOENT,
        "missing stays missing"
    );
    assert_eq!(a.read(t, "/t/d").unwrap(), b"live", "untouched: live");
    a.transaction_end(t, false).unwrap();
    let mut r = Raw::connect(b.socket());
    let (_, id) = r.call(ty::TRANSACTION_START, 0, b"\0");
    let id: u32 = String::from_utf8_lossy(&id)
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_eq!(
        r.err(ty::TRANSACTION_START, id, b"\0").as_deref(),
        Some("EBUSY")
    );
    assert_eq!(
        r.call(ty::GET_DOMAIN_PATH, id, &z(&["3"])).0,
        ty::GET_DOMAIN_PATH
    );
}

pub fn transaction_conflicts_between_connections(b: &dyn Backend) {
    let (a, o) = (&b.dom0(), &b.dom0());
    a.write(T0, "/t/c", b"0").unwrap();
    // Two transactions writing the same node: the second commit loses.
    let t1 = a.transaction_start().unwrap();
    let t2 = o.transaction_start().unwrap();
    a.read(t1, "/t/c").unwrap();
    o.read(t2, "/t/c").unwrap();
    a.write(t1, "/t/c", b"1").unwrap();
    o.write(t2, "/t/c", b"2").unwrap();
    assert_eq!(a.read(T0, "/t/c").unwrap(), b"0");
    a.transaction_end(t1, true).unwrap();
    assert_eq!(errno(o.transaction_end(t2, true)), Errno::EAGAIN);
    assert_eq!(a.read(T0, "/t/c").unwrap(), b"1");
    assert_eq!(
        errno(o.transaction_end(t2, true)),
        Errno::ENOENT,
        "gone after EAGAIN"
    );

    let conflict = |setup: &dyn Fn(TxId), outside: &dyn Fn()| -> Option<Errno> {
        let t = a.transaction_start().unwrap();
        setup(t);
        outside();
        a.transaction_end(t, true).err().and_then(|e| e.errno())
    };
    let again = Some(Errno::EAGAIN);
    let read = |p: &'static str| move |t: TxId| drop(a.read(t, p));
    assert_eq!(
        conflict(&read("/t/c"), &|| o.write(T0, "/t/c", b"1").unwrap()),
        again,
        "same value still a change"
    );
    assert_eq!(
        conflict(&read("/t/c"), &|| o.mkdir(T0, "/t/c").unwrap()),
        None,
        "mkdir of existing is no change"
    );
    assert_eq!(
        conflict(&read("/t/c"), &|| o.rm(T0, "/t/c/none").unwrap()),
        None
    );
    assert_eq!(
        conflict(&read("/t/n0"), &|| o.write(T0, "/t/n0", b"").unwrap()),
        again,
        "missed node appeared"
    );
    assert_eq!(
        conflict(&read("/t/c/sub"), &|| o.rm(T0, "/t/c").unwrap()),
        again,
        "ancestor looked at"
    );
    o.write(T0, "/t/c", b"0").unwrap();
    assert_eq!(
        conflict(&|t| a.write(t, "/t/n1", b"").unwrap(), &|| o
            .write(T0, "/t/n2", b"")
            .unwrap()),
        again,
        "both add to /t"
    );
    assert_eq!(
        conflict(&|t| a.write(t, "/t/c", b"5").unwrap(), &|| o
            .write(T0, "/t/n3", b"")
            .unwrap()),
        None
    );
    assert_eq!(
        conflict(&|t| drop(a.directory(t, "/t")), &|| o
            .write(T0, "/t/c", b"9")
            .unwrap()),
        None
    );
    assert_eq!(
        conflict(&|t| drop(a.directory(t, "/t")), &|| {
            o.write(T0, "/t/z", b"").unwrap();
            o.rm(T0, "/t/z").unwrap();
        }),
        again
    );
    assert_eq!(
        conflict(&|t| drop(a.get_perms(t, "/t/c")), &|| o
            .set_perms(T0, "/t/c", &perms(&["n0", "r3"]))
            .unwrap()),
        again
    );
    assert_eq!(
        conflict(&read("/t/c"), &|| drop(o.read(T0, "/t/c"))),
        None,
        "reads do not conflict"
    );
    // The retry helper gets through.
    let n = std::cell::Cell::new(0);
    vusb_xenstore::transaction(a, 5, |t| -> vusb_xenstore::Result<()> {
        n.set(n.get() + 1);
        let v = a.read(t, "/t/c")?;
        if n.get() == 1 {
            o.write(T0, "/t/c", b"interference")?;
        }
        a.write(t, "/t/c", &[v, b"+".to_vec()].concat())
    })
    .unwrap();
    assert_eq!(
        (n.get(), a.read(T0, "/t/c").unwrap()),
        (2, b"interference+".to_vec())
    );
}

pub fn watch_initial_subtree_and_removal_events(b: &dyn Backend) {
    let a = b.dom0();
    let w = b.dom0();
    a.write(T0, "/r/a/b/c", b"1").unwrap();
    w.watch("/r/a/b/c", "deep").unwrap();
    w.watch("/r/a", "top").unwrap();
    w.watch("/r", "root").unwrap();
    w.watch("/nonexistent/x", "ne").unwrap();
    assert_eq!(
        events(&w),
        [
            ev("/r/a/b/c", "deep"),
            ev("/r/a", "top"),
            ev("/r", "root"),
            ev("/nonexistent/x", "ne")
        ]
    );
    assert_eq!(errno(w.watch("/r", "root")), Errno::EEXIST);
    w.watch("/r", "root2").unwrap();
    assert_eq!(events(&w), [ev("/r", "root2")]);
    w.unwatch("/r", "root2").unwrap();
    a.write(T0, "/r/a/b/c", b"2").unwrap();
    assert_eq!(
        events(&w),
        [
            ev("/r/a/b/c", "deep"),
            ev("/r/a/b/c", "top"),
            ev("/r/a/b/c", "root")
        ]
    );
    a.write(T0, "/r/q/r/s", b"").unwrap();
    assert_eq!(
        events(&w),
        [ev("/r/q/r/s", "root")],
        "created parents fire nothing"
    );
    a.rm(T0, "/r/a").unwrap();
    assert_eq!(
        events(&w),
        [
            ev("/r/a/b/c", "deep"),
            ev("/r/a", "top"),
            ev("/r/a", "root")
        ]
    );
    a.mkdir(T0, "/r/q").unwrap();
    a.rm(T0, "/r/zz").unwrap();
    assert_eq!(
        events(&w),
        [],
        "mkdir of existing / rm of missing fire nothing"
    );
    a.set_perms(T0, "/r/q", &perms(&["n0"])).unwrap();
    assert_eq!(events(&w), [ev("/r/q", "root")]);
    w.unwatch("/r", "root").unwrap();
    assert_eq!(errno(w.unwatch("/r", "root")), Errno::ENOENT);
    a.write(T0, "/r/x", b"").unwrap();
    assert_eq!(events(&w), []);
    w.watch("/", "slash").unwrap();
    a.write(T0, "/r/y", b"").unwrap();
    assert_eq!(events(&w), [ev("/", "slash"), ev("/r/y", "slash")]);
    w.watch("rel/w", "tr").unwrap();
    a.write(T0, "/local/domain/0/rel/w/x", b"1").unwrap();
    let got = events(&w);
    assert!(
        got.contains(&ev("rel/w", "tr")) && got.contains(&ev("rel/w/x", "tr")),
        "{got:?}"
    );
}

pub fn event_and_reply_ordering_on_the_wire(b: &dyn Backend) {
    let mut r = Raw::connect(b.socket());
    let q = Duration::from_millis(300);
    r.send(ty::WATCH, 0, &z(&["/ord", "o"]));
    let m = r.drain(q);
    assert_eq!(
        m,
        [
            (ty::WATCH, 1, z(&["OK"])),
            (ty::WATCH_EVENT, 0, z(&["/ord", "o"]))
        ],
        "reply, then initial event"
    );
    r.send(ty::WRITE, 0, &[z(&["/ord/x"]), b"1".to_vec()].concat());
    let m = r.drain(q);
    assert_eq!(
        m,
        [
            (ty::WATCH_EVENT, 0, z(&["/ord/x", "o"])),
            (ty::WRITE, 2, z(&["OK"]))
        ],
        "own event before the reply"
    );
    r.send(ty::RM, 0, &z(&["/ord"]));
    let m = r.drain(q);
    assert_eq!(
        m,
        [
            (ty::WATCH_EVENT, 0, z(&["/ord", "o"])),
            (ty::RM, 3, z(&["OK"]))
        ]
    );
}

pub fn transaction_events_fire_at_commit(b: &dyn Backend) {
    let a = b.dom0();
    let w = b.dom0();
    a.write(T0, "/ev/a", b"1").unwrap();
    a.write(T0, "/ev/p/c", b"1").unwrap();
    a.write(T0, "/ev/x", b"1").unwrap();
    a.write(T0, "/ev/1/deep", b"1").unwrap();
    w.watch("/ev", "e").unwrap();
    w.watch("/ev/1/deep", "deep").unwrap();
    events(&w);
    let t = a.transaction_start().unwrap();
    a.read(t, "/ev/a").unwrap();
    a.write(t, "/ev/b", b"1").unwrap();
    a.write(t, "/ev/a", b"2").unwrap();
    a.write(t, "/ev/b", b"3").unwrap();
    a.write(t, "/ev/n", b"1").unwrap();
    a.rm(t, "/ev/n").unwrap();
    assert_eq!(events(&w), [], "nothing before commit");
    a.transaction_end(t, true).unwrap();
    assert_eq!(
        events(&w),
        [ev("/ev/a", "e"), ev("/ev/b", "e")],
        "once per node, first-touch order"
    );
    let t = a.transaction_start().unwrap();
    a.write(t, "/ev/p/c", b"2").unwrap();
    a.rm(t, "/ev/p").unwrap();
    a.write(t, "/ev/x", b"2").unwrap();
    a.rm(t, "/ev/x").unwrap();
    a.mkdir(t, "/ev/a").unwrap();
    a.rm(t, "/ev/1").unwrap();
    a.transaction_end(t, true).unwrap();
    assert_eq!(
        events(&w),
        [
            ev("/ev/p/c", "e"),
            ev("/ev/p", "e"),
            ev("/ev/x", "e"),
            ev("/ev/1", "e"),
            ev("/ev/1/deep", "deep")
        ]
    );
    let t = a.transaction_start().unwrap();
    a.write(t, "/ev/aborted", b"1").unwrap();
    a.transaction_end(t, false).unwrap();
    assert_eq!(events(&w), [], "aborted: no event");
}

pub fn special_watches_introduce_release(b: &dyn Backend) {
    let a = b.dom0();
    a.watch("@introduceDomain", "i").unwrap();
    a.watch("@releaseDomain", "r").unwrap();
    assert_eq!(
        events(&a),
        [ev("@introduceDomain", "i"), ev("@releaseDomain", "r")]
    );
    assert!(!a.is_domain_introduced(6).unwrap());
    a.introduce(6, 1, 7).unwrap();
    assert_eq!(events(&a), [ev("@introduceDomain", "i")]);
    assert!(a.is_domain_introduced(6).unwrap());
    a.introduce(6, 1, 7).unwrap();
    assert_eq!(events(&a), [], "introducing again fires nothing");
    a.release(6).unwrap();
    assert_eq!(events(&a), [ev("@releaseDomain", "r")]);
    assert!(!a.is_domain_introduced(6).unwrap());
    assert_eq!(errno(a.release(6)), Errno::ENOENT);
}

pub fn removal_events_per_removed_node(b: &dyn Backend) {
    let a = b.dom0();
    let w = b.dom0();
    let tree = ["/r/a/b/c", "/r/a/x", "/r/a/b/d"];
    let watched = [
        "/r/a/nonexist",
        "/r/a/b/d",
        "/r/a/x",
        "/r/a/b",
        "/r/a/b/c",
        "/r",
        "/r/a",
    ];
    for n in tree {
        a.write(T0, n, b"1").unwrap();
    }
    for p in watched {
        w.watch(p, p).unwrap();
    }
    assert_eq!(events(&w).len(), watched.len());
    a.rm(T0, "/r/a").unwrap();
    let e = |p: &str, t: &str| ev(p, t);
    assert_eq!(
        events(&w),
        [
            e("/r/a/b/c", "/r/a/b/c"),
            e("/r/a/b/d", "/r/a/b/d"),
            e("/r/a/b", "/r/a/b"),
            e("/r/a/x", "/r/a/x"),
            e("/r/a", "/r"),
            e("/r/a", "/r/a"),
        ],
        "removed nodes children first (exact watches), then the target"
    );
    for n in tree {
        a.write(T0, n, b"1").unwrap();
    }
    events(&w);
    let t = a.transaction_start().unwrap();
    a.rm(t, "/r/a").unwrap();
    a.transaction_end(t, true).unwrap();
    assert_eq!(
        events(&w),
        [
            e("/r/a", "/r"),
            e("/r/a", "/r/a"),
            e("/r/a/b", "/r/a/b"),
            e("/r/a/b/c", "/r/a/b/c"),
            e("/r/a/b/d", "/r/a/b/d"),
            e("/r/a/x", "/r/a/x"),
        ],
        "in a transaction: in the order the removal touched them"
    );
}

pub fn release_removes_the_domains_nodes(b: &dyn Backend) {
    let a = b.dom0();
    let w = b.dom0();
    a.introduce(5, 1, 7).unwrap();
    a.write(T0, "/own5/child", b"1").unwrap();
    a.set_perms(T0, "/own5", &perms(&["b5"])).unwrap();
    a.write(T0, "/x/own5b/y", b"1").unwrap();
    a.set_perms(T0, "/x/own5b", &perms(&["n5"])).unwrap();
    a.write(T0, "/x/keep", b"1").unwrap();
    a.write(T0, "/acl", b"1").unwrap();
    a.set_perms(T0, "/acl", &perms(&["n0", "r5"])).unwrap();
    a.write(T0, "/local/domain/5/a", b"1").unwrap();
    a.set_perms(T0, "/local/domain/5", &perms(&["n5"])).unwrap();
    w.watch("/", "root").unwrap();
    w.watch("@releaseDomain", "rel").unwrap();
    w.watch("/own5/child", "c").unwrap();
    events(&w);
    a.release(5).unwrap();
    assert_eq!(
        events(&w),
        [
            ev("/own5/child", "c"),
            ev("/own5", "root"),
            ev("/x/own5b", "root"),
            ev("/local/domain/5", "root"),
            ev("@releaseDomain", "rel"),
        ]
    );
    assert_eq!(a.directory(T0, "/").unwrap(), ["tool", "x", "acl", "local"]);
    assert_eq!(a.directory(T0, "/x").unwrap(), ["keep"]);
    assert_eq!(
        a.get_perms(T0, "/acl").unwrap(),
        perms(&["n0", "r5"]),
        "ACL entries stay"
    );
}

pub fn concurrent_transactional_increments(b: &dyn Backend) {
    b.dom0().write(T0, "/cnt", b"0").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = b.dom0();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    vusb_xenstore::transaction(&c, 1000, |t| -> vusb_xenstore::Result<()> {
                        let v: u32 = String::from_utf8_lossy(&c.read(t, "/cnt")?)
                            .parse()
                            .unwrap();
                        c.write(t, "/cnt", (v + 1).to_string().as_bytes())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(b.dom0().read(T0, "/cnt").unwrap(), b"100", "no lost update");
}
