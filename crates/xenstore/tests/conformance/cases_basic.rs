//! Node operations, paths, permissions (dom0), directories, limits.

use super::backend::Backend;
use super::raw::{Raw, ty, z};
use super::*;

pub fn read_write_mkdir_rm(b: &dyn Backend) {
    let a = b.dom0();
    assert_eq!(a.read(T0, "/tool/xenstored").unwrap(), b"");
    a.write(T0, "/t/k", b"v1").unwrap();
    assert_eq!(a.read(T0, "/t/k").unwrap(), b"v1");
    assert_eq!(a.read(T0, "/t").unwrap(), b"", "created parent is empty");
    assert_eq!(errno(a.read(T0, "/t/none")), Errno::ENOENT);
    a.write(T0, "/t/bin", b"a\0b\xff").unwrap();
    assert_eq!(a.read(T0, "/t/bin").unwrap(), b"a\0b\xff");
    a.mkdir(T0, "/t/k").unwrap();
    assert_eq!(a.read(T0, "/t/k").unwrap(), b"v1", "mkdir keeps the value");
    a.mkdir(T0, "/t/d/e").unwrap();
    assert_eq!(a.read(T0, "/t/d/e").unwrap(), b"");
    a.rm(T0, "/t/none").unwrap();
    assert_eq!(errno(a.rm(T0, "/t/none/x")), Errno::ENOENT);
    a.rm(T0, "/t/d").unwrap();
    assert_eq!(errno(a.read(T0, "/t/d/e")), Errno::ENOENT);
    assert_eq!(errno(a.rm(T0, "/")), Errno::EINVAL);
    assert_eq!(errno(a.directory(T0, "/nope")), Errno::ENOENT);
    assert_eq!(errno(a.get_perms(T0, "/nope")), Errno::ENOENT);
    assert_eq!(
        errno(a.set_perms(T0, "/nope", &perms(&["n0"]))),
        Errno::ENOENT
    );
}

pub fn directory_order_is_creation_order(b: &dyn Backend) {
    let a = b.dom0();
    for n in ["zz", "aa", "mm", "bb"] {
        a.write(T0, &format!("/o/{n}"), b"").unwrap();
    }
    assert_eq!(a.directory(T0, "/o").unwrap(), ["zz", "aa", "mm", "bb"]);
    a.rm(T0, "/o/aa").unwrap();
    a.write(T0, "/o/aa", b"").unwrap();
    assert_eq!(a.directory(T0, "/o").unwrap(), ["zz", "mm", "bb", "aa"]);
    assert_eq!(a.directory(T0, "/").unwrap(), ["tool", "o"]);
}

pub fn relative_paths_resolve_to_the_home(b: &dyn Backend) {
    let a = b.dom0();
    a.write(T0, "rel/x", b"1").unwrap();
    assert_eq!(a.read(T0, "/local/domain/0/rel/x").unwrap(), b"1");
    assert_eq!(a.directory(T0, "/local/domain/0").unwrap(), ["rel"]);
    assert_eq!(a.get_domain_path(3).unwrap(), "/local/domain/3");
    assert!(a.is_domain_introduced(0).unwrap());
    assert!(!a.is_domain_introduced(7).unwrap());
}

pub fn permissions_of_dom0_nodes(b: &dyn Backend) {
    let a = b.dom0();
    a.write(T0, "/p", b"").unwrap();
    assert_eq!(a.get_perms(T0, "/p").unwrap(), perms(&["n0"]));
    a.set_perms(T0, "/p", &perms(&["r5", "w7", "b0"])).unwrap();
    assert_eq!(a.get_perms(T0, "/p").unwrap(), perms(&["r5", "w7", "b0"]));
    a.write(T0, "/p/c/d", b"").unwrap();
    assert_eq!(
        a.get_perms(T0, "/p/c").unwrap(),
        perms(&["r5", "w7", "b0"]),
        "inherited unchanged by dom0"
    );
    assert_eq!(
        a.get_perms(T0, "/p/c/d").unwrap(),
        perms(&["r5", "w7", "b0"])
    );
    a.set_perms(T0, "/p", &perms(&["n0", "r5", "r5", "w0"]))
        .unwrap();
    assert_eq!(
        a.get_perms(T0, "/p").unwrap(),
        perms(&["n0", "r5", "r5", "w0"]),
        "kept as given"
    );
}

pub fn malformed_requests_on_the_wire(b: &dyn Backend) {
    let mut r = Raw::connect(b.socket());
    for bad in ["/o/", "/o//k", "/a.b", "/a b", "", "@introduceDomain"] {
        assert_eq!(
            r.err(ty::READ, 0, &z(&[bad])).as_deref(),
            Some("EINVAL"),
            "{bad:?}"
        );
    }
    assert_eq!(
        r.err(ty::READ, 0, b"/o").as_deref(),
        Some("EINVAL"),
        "unterminated"
    );
    assert_eq!(
        r.err(ty::READ, 0, &z(&["/a", "/b"])).as_deref(),
        Some("EINVAL"),
        "two args"
    );
    assert_eq!(r.err(ty::WRITE, 0, b"/nonul").as_deref(), Some("EINVAL"));
    assert_eq!(r.err(99, 0, b"").as_deref(), Some("ENOSYS"), "unknown type");
    assert_eq!(
        r.call(ty::READ, 0, &z(&["/tool"])),
        (ty::READ, Vec::new()),
        "still served"
    );
    assert_eq!(
        r.err(ty::SET_PERMS, 0, &z(&["/tool"])).as_deref(),
        Some("EINVAL")
    );
    assert_eq!(
        r.err(ty::SET_PERMS, 0, &z(&["/tool", "x5"])).as_deref(),
        Some("EINVAL")
    );
    assert_eq!(r.err(ty::WATCH, 0, &z(&["/a"])).as_deref(), Some("EINVAL"));
    assert_eq!(
        r.err(ty::TRANSACTION_END, 0, &z(&["X"])).as_deref(),
        Some("EINVAL")
    );
    assert_eq!(
        r.err(ty::DIRECTORY_PART, 0, &z(&["/tool"])).as_deref(),
        Some("EINVAL")
    );
    assert_eq!(
        r.err(ty::GET_PERMS, 0, &z(&["@introduceDomain"]))
            .as_deref(),
        Some("EINVAL")
    );
    assert_eq!(
        r.call(ty::GET_DOMAIN_PATH, 0, &z(&["abc"])),
        (ty::GET_DOMAIN_PATH, z(&["/local/domain/0"])),
        "domain ids are read like atoi"
    );
    assert_eq!(
        r.err(ty::INTRODUCE, 0, &z(&["8", "1"])).as_deref(),
        Some("EINVAL")
    );
    assert_eq!(r.err(ty::RELEASE, 0, &z(&["0"])).as_deref(), Some("EINVAL"));
    assert_eq!(
        r.call(ty::RESET_WATCHES, 0, b""),
        (ty::RESET_WATCHES, z(&["OK"]))
    );
}

pub fn oversized_payload_drops_the_connection(b: &dyn Backend) {
    let mut r = Raw::connect(b.socket());
    let mut p = z(&["/v"]);
    p.extend(std::iter::repeat_n(b'x', 4093));
    assert_eq!(
        r.call(ty::WRITE, 0, &p).0,
        ty::WRITE,
        "4096 bytes is the limit, inclusive"
    );
    p.push(b'x');
    r.send(ty::WRITE, 0, &p);
    assert!(
        r.recv(Duration::from_secs(2)).is_none(),
        "no reply, connection closed"
    );
    assert_eq!(
        b.dom0().read(T0, "/v").unwrap().len(),
        4093,
        "others unaffected"
    );
}

pub fn path_length_limits(b: &dyn Backend) {
    let mut r = Raw::connect(b.socket());
    let mut w = |p: &str| r.err(ty::WRITE, 0, &[z(&[p]), b"1".to_vec()].concat());
    let abs = format!("/{}", "x".repeat(2047));
    assert_eq!(w(&abs), None, "2048 bytes");
    assert_eq!(
        w(&format!("{abs}x")).as_deref(),
        Some("EINVAL"),
        "2049 bytes, even for dom0"
    );
    let local = format!("/local/domain/0/{}", "y".repeat(2048));
    assert_eq!(
        w(&local),
        None,
        "below a home only the part after it counts"
    );
    assert_eq!(w(&format!("{local}y")).as_deref(), Some("EINVAL"));
    assert_eq!(w(&"r".repeat(2048)), None, "relative");
    assert_eq!(w(&"r".repeat(2049)).as_deref(), Some("EINVAL"));
}

pub fn large_directory_e2big_and_parts(b: &dyn Backend) {
    let a = b.dom0();
    let names: Vec<String> = (0..300).map(|i| format!("child-number-{i:04}")).collect();
    for n in &names {
        a.write(T0, &format!("/big/{n}"), b"").unwrap();
    }
    assert_eq!(
        a.directory(T0, "/big").unwrap(),
        names,
        "client falls back to parts"
    );
    let mut r = Raw::connect(b.socket());
    assert_eq!(
        r.err(ty::DIRECTORY, 0, &z(&["/big"])).as_deref(),
        Some("E2BIG")
    );
    let (t, p0) = r.call(ty::DIRECTORY_PART, 0, &z(&["/big", "0"]));
    assert_eq!(t, ty::DIRECTORY_PART);
    let gen_len = p0.iter().position(|&x| x == 0).unwrap() + 1;
    assert_eq!(p0.len(), gen_len + 227 * 18, "as many whole names as fit");
    let (_, p1) = r.call(
        ty::DIRECTORY_PART,
        0,
        &z(&["/big", &(227 * 18).to_string()]),
    );
    assert_eq!(p1[..gen_len], p0[..gen_len], "same generation");
    assert!(
        p1.ends_with(b"child-number-0299\0\0"),
        "last part ends with an empty string"
    );
    let (_, p2) = r.call(ty::DIRECTORY_PART, 0, &z(&["/big", "999999"]));
    assert_eq!(p2[gen_len..], [0u8][..], "past the end");
    a.write(T0, "/small/a", b"").unwrap();
    a.write(T0, "/small/bb", b"").unwrap();
    let (_, s1) = r.call(ty::DIRECTORY_PART, 0, &z(&["/small", "1"]));
    let g = s1.iter().position(|&x| x == 0).unwrap() + 1;
    assert_eq!(&s1[g..], b"\0bb\0\0", "byte offset, even inside a name");
    a.write(T0, "/big/one-more", b"").unwrap();
    let (_, p3) = r.call(ty::DIRECTORY_PART, 0, &z(&["/big", "0"]));
    assert_ne!(
        p3[..gen_len],
        p0[..gen_len],
        "generation changes with the list"
    );
}
