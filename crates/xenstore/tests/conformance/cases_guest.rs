//! A guest-domain connection (ring on the real daemon, a domain socket on
//! the memory server): permissions enforced, inheritance with the owner
//! rewritten, filtered watch events, quotas.

use super::backend::Backend;
use super::*;

fn setup(b: &dyn Backend) -> (vusb_xenstore::client::Client, Box<dyn super::backend::Conn>) {
    let a = b.dom0();
    let g = b.guest(&a, 5);
    (a, g)
}

fn node(a: &impl Xenstore, p: &str, ps: &[&str]) {
    a.mkdir(T0, p).unwrap();
    a.set_perms(T0, p, &perms(ps)).unwrap();
}

pub fn guest_gets_eacces_on_dom0_nodes(b: &dyn Backend) {
    let (a, g) = setup(b);
    a.write(T0, "/priv", b"secret").unwrap();
    a.write(T0, "/shared", b"hello").unwrap();
    a.set_perms(T0, "/shared", &perms(&["n0", "r5"])).unwrap();
    assert_eq!(errno(g.read(T0, "/priv")), Errno::EACCES);
    assert_eq!(errno(g.get_perms(T0, "/priv")), Errno::EACCES);
    assert_eq!(errno(g.directory(T0, "/")), Errno::EACCES);
    assert_eq!(g.read(T0, "/shared").unwrap(), b"hello");
    assert_eq!(errno(g.write(T0, "/shared", b"x")), Errno::EACCES);
    assert_eq!(errno(g.rm(T0, "/priv")), Errno::EACCES);
    assert_eq!(errno(g.mkdir(T0, "/tool/x")), Errno::EACCES);
    assert_eq!(
        errno(g.write(T0, "data", b"1")),
        Errno::EACCES,
        "no home yet"
    );
    node(&a, "/local/domain/5", &["n5"]);
    g.write(T0, "data", b"mine").unwrap();
    assert_eq!(a.read(T0, "/local/domain/5/data").unwrap(), b"mine");
    assert_eq!(
        a.get_perms(T0, "/local/domain/5/data").unwrap(),
        perms(&["n5"])
    );
    let t = g.transaction_start().unwrap();
    g.write(t, "data", b"tx").unwrap();
    g.transaction_end(t, true).unwrap();
    assert_eq!(a.read(T0, "/local/domain/5/data").unwrap(), b"tx");
}

pub fn guest_created_nodes_inherit_with_owner_rewritten(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/g", &["n0", "b5"]);
    g.write(T0, "/g/y/z", b"1").unwrap();
    assert_eq!(a.get_perms(T0, "/g/y").unwrap(), perms(&["n5", "b5"]));
    assert_eq!(a.get_perms(T0, "/g/y/z").unwrap(), perms(&["n5", "b5"]));
    node(&a, "/w5", &["n0", "w5"]);
    g.write(T0, "/w5/a/b", b"1").unwrap();
    assert_eq!(a.get_perms(T0, "/w5/a").unwrap(), perms(&["n5", "w5"]));
    g.set_perms(T0, "/g/y", &perms(&["n5", "r0"])).unwrap();
    assert_eq!(
        errno(g.set_perms(T0, "/g/y", &perms(&["b7"]))),
        Errno::EPERM,
        "cannot give away"
    );
    assert_eq!(
        errno(g.set_perms(T0, "/g", &perms(&["n0", "b5"]))),
        Errno::EACCES,
        "b5 on a dom0 node is not ownership"
    );
    assert_eq!(a.get_perms(T0, "/g/y").unwrap(), perms(&["n5", "r0"]));
}

pub fn guest_errors_for_missing_nodes_come_from_ancestors(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/r5", &["n0", "r5"]);
    node(&a, "/w5", &["n0", "w5"]);
    node(&a, "/n5", &["n0"]);
    node(&a, "/o5", &["r0"]);
    assert_eq!(errno(g.read(T0, "/r5/none")), Errno::ENOENT);
    assert_eq!(errno(g.read(T0, "/w5/none")), Errno::EACCES);
    assert_eq!(errno(g.read(T0, "/w5")), Errno::EACCES, "write-only");
    assert_eq!(errno(g.read(T0, "/nonexist/a")), Errno::EACCES, "/ is n0");
    assert_eq!(errno(g.read(T0, "/o5/none")), Errno::ENOENT, "others get r");
    assert_eq!(errno(g.write(T0, "/o5/q", b"1")), Errno::EACCES);
    assert_eq!(errno(g.write(T0, "/r5/x", b"1")), Errno::EACCES);
    assert_eq!(errno(g.rm(T0, "/r5/none")), Errno::EACCES);
    g.rm(T0, "/w5/none").unwrap();
    assert_eq!(errno(g.rm(T0, "/n5/none")), Errno::EACCES);
    assert_eq!(errno(g.get_perms(T0, "/r5/none")), Errno::ENOENT);
}

pub fn guest_watch_events_need_read_permission(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/r5", &["n0", "r5"]);
    node(&a, "/n5", &["n0"]);
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
    g.watch("@releaseDomain", "rel").unwrap();
    assert_eq!(
        events(g.as_ref()).len(),
        6,
        "initial events are always sent"
    );
    a.rm(T0, "/r5/del").unwrap();
    a.write(T0, "/r5/none", b"1").unwrap();
    a.write(T0, "/n5/none", b"1").unwrap();
    a.write(T0, "/n5/x/y/z", b"1").unwrap();
    a.rm(T0, "/n5/x").unwrap();
    a.introduce(9, 1, 7).unwrap();
    a.release(9).unwrap();
    let got = events(g.as_ref());
    assert_eq!(
        got,
        [
            ev("/r5/del", "g2"),
            ev("/r5/none", "g0"),
            ev("/n5/x/y/z", "g3"),
            ev("/n5/x/y/z", "g4"),
            ev("/n5/x/y", "g4")
        ]
    );
    a.set_perms(T0, "@releaseDomain", &perms(&["n0", "r5"]))
        .unwrap();
    a.introduce(9, 1, 7).unwrap();
    a.release(9).unwrap();
    assert_eq!(events(g.as_ref()), [ev("@releaseDomain", "rel")]);
}

pub fn guest_domain_requests(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/local/domain/5", &["n5"]);
    g.watch("rel", "r").unwrap();
    g.write(T0, "rel/x", b"1").unwrap();
    assert_eq!(
        events(g.as_ref()),
        [ev("rel", "r"), ev("rel/x", "r")],
        "relative watch, relative events"
    );
    assert!(a.is_domain_introduced(5).unwrap());
}

pub fn guest_quotas(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/local/domain/5", &["n5"]);
    let mut open = 0;
    let err = loop {
        match g.transaction_start() {
            Ok(_) => open += 1,
            Err(e) => break e.errno(),
        }
        assert!(open < 100, "no transaction quota");
    };
    assert_eq!((open, err), (11, Some(Errno::ENOSPC)));
    let n = (0..200)
        .take_while(|i| g.watch(&format!("w{i}"), "t").is_ok())
        .count();
    assert_eq!(n, 129);
    assert_eq!(errno(g.watch("w-over", "t")), Errno::E2BIG);
    // Node size: the largest value a guest may store in a fresh node.
    let fits = |len: usize| g.write(T0, "big", &vec![b'x'; len]).is_ok();
    let (mut lo, mut hi) = (0usize, 4000usize);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    assert_eq!(
        lo,
        2048 - 24 - 8 - 1,
        "record (24-byte header + 8 per permission + value) < 2048"
    );
    node(&a, "/local/domain/5/two", &["n5", "r0"]);
    let fits2 = |len: usize| g.write(T0, "two", &vec![b'x'; len]).is_ok();
    assert!(fits2(lo - 8) && !fits2(lo - 7), "8 bytes per permission");
    for i in 0.. {
        if let Err(e) = g.write(T0, &format!("kids/k{i:07}"), b"") {
            assert_eq!(
                (i, e.errno()),
                (223, Some(Errno::ENOSPC)),
                "child names count too"
            );
            break;
        }
    }
    assert_eq!(
        errno(g.write(T0, "big", &vec![b'x'; lo + 1])),
        Errno::ENOSPC
    );
    a.write(T0, "/local/domain/5/dom0-big", &[b'x'; 4000])
        .unwrap();
}

/// Run with a node quota of 10 on both stores (`--entry-nb=10`).
pub fn node_count_quota(b: &dyn Backend) {
    let (a, g) = setup(b);
    node(&a, "/local/domain/5", &["n5"]);
    let made = (0..30)
        .take_while(|i| g.write(T0, &format!("n{i}"), b"").is_ok())
        .count();
    assert_eq!(made, 9, "the home and 9 more: 10 nodes owned by dom5");
    assert_eq!(errno(g.write(T0, "over", b"")), Errno::ENOSPC);
    a.write(T0, "/local/domain/5/bydom0", b"").unwrap();
    assert_eq!(
        a.get_perms(T0, "/local/domain/5/bydom0").unwrap(),
        perms(&["n5"]),
        "dom0 is not limited"
    );
    g.rm(T0, "n0").unwrap();
    g.rm(T0, "n1").unwrap();
    g.write(T0, "again", b"").unwrap();
    assert_eq!(errno(g.write(T0, "again2", b"")), Errno::ENOSPC);
}
