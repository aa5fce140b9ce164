//! Watches: the initial event, subtree and removal events, ordering on
//! the wire, events at commit, special watches, domain release.

use super::backend::Backend;
use super::raw::{Raw, ty, z};
use super::*;

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
