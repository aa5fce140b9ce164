//! Transactions: visibility, copies taken at first touch, conflicts
//! between connections, the retry helper, concurrency.

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
