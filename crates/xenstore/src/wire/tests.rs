#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::reply::*;
use super::request::split_strings;
use super::*;
use crate::{Errno, Perm, PermKind};

fn xs_wire_h() -> Option<String> {
    std::fs::read_to_string("/usr/include/xen/io/xs_wire.h").ok()
}

#[test]
fn type_numbers_match_xs_wire_h() {
    assert_eq!(MsgType::Control.number(), 0);
    assert_eq!(MsgType::SetTarget.number(), 19);
    assert_eq!(MsgType::ResetWatches.number(), 21);
    assert_eq!(MsgType::DirectoryPart.number(), 22);
    assert_eq!(MsgType::try_from(20), Err(UnknownMsgType(20)));
    assert_eq!(MsgType::try_from(23), Err(UnknownMsgType(23)));
    for t in MsgType::ALL {
        assert_eq!(MsgType::try_from(t.number()), Ok(t));
    }
    // Cross-check the order of the C enum when the header is installed.
    if let Some(h) = xs_wire_h() {
        let body = h.split("enum xsd_sockmsg_type").nth(1).unwrap();
        let body = body.split("XS_RESET_WATCHES").next().unwrap();
        let names: Vec<&str> = body
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("XS_") && l.ends_with(','))
            .map(|l| l.trim_end_matches(',').trim_start_matches("XS_"))
            .collect();
        let ours: Vec<&str> = MsgType::ALL[..20].iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ours);
        assert!(h.contains("#define XENSTORE_PAYLOAD_MAX 4096"));
        assert!(h.contains("#define XENSTORE_ABS_PATH_MAX 3072"));
        assert!(h.contains("#define XENSTORE_REL_PATH_MAX 2048"));
    }
}

#[test]
fn header_round_trip_little_endian() {
    let h = Header {
        ty: 2,
        req_id: 0x01020304,
        tx_id: 7,
        len: 5,
    };
    let b = h.encode();
    assert_eq!(&b[..8], &[2, 0, 0, 0, 4, 3, 2, 1]);
    assert_eq!(Header::decode(&b), h);
}

#[test]
fn request_payloads() {
    let enc = |r: Request| r.encode(9, crate::TxId(3)).unwrap().encode();
    let m = enc(Request::Write {
        path: "/a",
        value: b"xy",
    });
    assert_eq!(
        &m[..16],
        &Header {
            ty: 11,
            req_id: 9,
            tx_id: 3,
            len: 5
        }
        .encode()
    );
    assert_eq!(&m[16..], b"/a\0xy");
    assert_eq!(
        Request::DirectoryPart {
            path: "/d",
            offset: 12
        }
        .payload(),
        b"/d\x0012\0"
    );
    assert_eq!(Request::TransactionEnd { commit: true }.payload(), b"T\0");
    assert_eq!(Request::TransactionEnd { commit: false }.payload(), b"F\0");
    assert_eq!(Request::TransactionStart.payload(), b"\0");
    assert_eq!(
        Request::SetPerms {
            path: "/p",
            perms: vec![Perm::new(PermKind::None, 0), Perm::new(PermKind::Read, 5)]
        }
        .payload(),
        b"/p\0n0\0r5\0"
    );
    assert_eq!(
        Request::Watch {
            path: "/w",
            token: "t"
        }
        .payload(),
        b"/w\0t\0"
    );
    assert_eq!(
        Request::Introduce {
            domid: 3,
            mfn: 4096,
            evtchn: 9
        }
        .payload(),
        b"3\x004096\x009\0"
    );
    assert_eq!(Request::GetDomainPath { domid: 12 }.payload(), b"12\0");
}

#[test]
fn request_decode_round_trip() {
    let reqs = vec![
        Request::Control {
            args: vec!["log", "on"],
        },
        Request::Read { path: "/a" },
        Request::Write {
            path: "/a",
            value: b"v\0with nul",
        },
        Request::Write {
            path: "/a",
            value: b"",
        },
        Request::Mkdir { path: "/a" },
        Request::Rm { path: "/a" },
        Request::Directory { path: "/a" },
        Request::DirectoryPart {
            path: "/a",
            offset: 4000,
        },
        Request::GetPerms {
            path: "@releaseDomain",
        },
        Request::SetPerms {
            path: "/a",
            perms: vec![Perm::new(PermKind::Both, 3)],
        },
        Request::Watch {
            path: "/a",
            token: "tok",
        },
        Request::Unwatch {
            path: "/a",
            token: "",
        },
        Request::TransactionStart,
        Request::TransactionEnd { commit: false },
        Request::GetDomainPath { domid: 7 },
        Request::IsDomainIntroduced { domid: 7 },
        Request::Introduce {
            domid: 7,
            mfn: 1 << 40,
            evtchn: 3,
        },
        Request::Release { domid: 7 },
        Request::Resume { domid: 7 },
        Request::SetTarget {
            domid: 7,
            target: 8,
        },
        Request::ResetWatches,
    ];
    for r in reqs {
        let msg = r.encode(1, crate::TxId::NONE).unwrap();
        assert_eq!(Request::decode(&msg).unwrap(), r);
    }
}

#[test]
fn request_decode_rejects_malformed() {
    let msg = |ty: MsgType, p: &[u8]| Message::new(ty, 1, crate::TxId::NONE, p.to_vec()).unwrap();
    for (ty, p) in [
        (MsgType::Read, &b"/a"[..]),
        (MsgType::Read, b"/a\0/b\0"),
        (MsgType::Read, b""),
        (MsgType::Write, b"/a"),
        (MsgType::TransactionEnd, b"X\0"),
        (MsgType::DirectoryPart, b"/a\0x\0"),
        (MsgType::SetPerms, b"/a\0"),
        (MsgType::SetPerms, b"/a\0q1\0"),
        (MsgType::GetDomainPath, b"-1\0"),
        (MsgType::Error, b"EINVAL\0"),
        (MsgType::Read, b"\xff\0"),
    ] {
        let e = Request::decode(&msg(ty, p)).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL), "{ty} {p:?}: {e}");
    }
    let mut unknown = msg(MsgType::Read, b"/a\0");
    unknown.header.ty = 20;
    assert!(matches!(
        Request::decode(&unknown),
        Err(crate::Error::BadRequest { .. })
    ));
}

#[test]
fn payload_limit_checked_before_sending() {
    let value = vec![b'x'; PAYLOAD_MAX];
    let e = Request::Write {
        path: "/a",
        value: &value,
    }
    .encode(1, crate::TxId::NONE)
    .unwrap_err();
    assert!(
        matches!(
            e,
            crate::Error::PayloadTooLarge {
                op: "WRITE",
                len: 4099,
                max: 4096
            }
        ),
        "{e}"
    );
    let fits = vec![b'x'; PAYLOAD_MAX - 3];
    assert!(
        Request::Write {
            path: "/a",
            value: &fits
        }
        .encode(1, crate::TxId::NONE)
        .is_ok()
    );
}

#[test]
fn path_checks() {
    let ok = |p: &str, r| check_path(p, r).is_ok();
    assert!(ok("/", PathRule::ABSOLUTE));
    assert!(ok("/local/domain/0/backend/vusb/1/0", PathRule::ABSOLUTE));
    assert!(ok("/a-b_c@d/E9", PathRule::ABSOLUTE));
    assert!(ok("device/vusb", PathRule::NODE));
    assert!(!ok("device/vusb", PathRule::ABSOLUTE));
    assert!(ok("@releaseDomain", PathRule::NODE.with_special()));
    assert!(!ok("@releaseDomain", PathRule::NODE));
    assert!(!ok("@other", PathRule::NODE.with_special()));
    for bad in ["", "/a\0b", "/a/", "/a//b", "/a b", "/a.b", "/ä", "/a:b"] {
        let e = check_path(bad, PathRule::NODE).unwrap_err();
        assert!(matches!(e, crate::Error::InvalidPath { .. }), "{bad:?}");
        assert_eq!(e.errno(), Some(Errno::EINVAL));
    }
    let long = format!("/{}", "a".repeat(ABS_PATH_MAX - 1));
    assert!(ok(&long, PathRule::ABSOLUTE));
    assert!(!ok(&format!("{long}b"), PathRule::ABSOLUTE));
    let rel = "a".repeat(REL_PATH_MAX);
    assert!(ok(&rel, PathRule::NODE));
    assert!(!ok(&format!("{rel}b"), PathRule::NODE));
    assert!(path::check_token("a\0b").is_err());
    assert!(
        Request::Watch {
            path: "/a",
            token: "x\0"
        }
        .validate(false)
        .is_err()
    );
    assert!(Request::Read { path: "rel" }.validate(false).is_err());
    assert!(Request::Read { path: "rel" }.validate(true).is_ok());
}

#[test]
fn decoder_reassembles_split_input() {
    let a = Message::new(MsgType::Read, 1, crate::TxId::NONE, b"value".to_vec()).unwrap();
    let b = watch_event_message("/a/b", "tok").unwrap();
    let c = Message::new(MsgType::Directory, 2, crate::TxId(4), Vec::new()).unwrap();
    let mut stream = a.encode();
    stream.extend(b.encode());
    stream.extend(c.encode());
    for split in 0..stream.len() {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for piece in [&stream[..split], &stream[split..]] {
            d.push(piece);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![a.clone(), b.clone(), c.clone()],
            "split at {split}"
        );
        assert_eq!(d.buffered(), 0);
    }
    // Byte by byte.
    let mut d = Decoder::new();
    let mut n = 0;
    for byte in &stream {
        d.push(std::slice::from_ref(byte));
        while d.next_message().unwrap().is_some() {
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn decoder_rejects_oversize_length_and_stays_failed() {
    let mut d = Decoder::new();
    d.push(
        &Header {
            ty: 2,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        }
        .encode(),
    );
    let e = d.next_message().unwrap_err();
    assert!(
        matches!(
            e,
            crate::Error::MessageTooLarge {
                len: 4097,
                max: 4096
            }
        ),
        "{e}"
    );
    d.push(&[0; 4097]);
    assert!(d.next_message().is_err());
    let mut d = Decoder::new();
    d.push(
        &Header {
            ty: 2,
            req_id: 1,
            tx_id: 0,
            len: u32::MAX,
        }
        .encode(),
    );
    assert!(d.next_message().is_err());
    // Exactly at the limit is fine.
    let mut d = Decoder::new();
    d.push(
        &Header {
            ty: 2,
            req_id: 1,
            tx_id: 0,
            len: 4096,
        }
        .encode(),
    );
    d.push(&[b'x'; 4096]);
    assert_eq!(d.next_message().unwrap().unwrap().payload.len(), 4096);
}

#[test]
fn reply_parsers() {
    assert_eq!(
        parse_error(MsgType::Read, b"ENOENT\0").unwrap(),
        Errno::ENOENT
    );
    assert_eq!(
        parse_error(MsgType::Read, b"EQUOTA\0").unwrap(),
        Errno::EQUOTA
    );
    assert!(matches!(
        parse_error(MsgType::Read, b"EWHAT\0"),
        Err(crate::Error::Protocol { .. })
    ));
    assert!(parse_ok(MsgType::Write, b"OK\0").is_ok());
    assert!(parse_ok(MsgType::Write, b"KO\0").is_err());
    assert_eq!(
        parse_list(MsgType::Directory, b"a\0bb\0").unwrap(),
        vec!["a", "bb"]
    );
    assert!(parse_list(MsgType::Directory, b"").unwrap().is_empty());
    assert!(parse_list(MsgType::Directory, b"a\0b").is_err());
    assert_eq!(
        parse_perms(MsgType::GetPerms, b"n0\0r5\0").unwrap(),
        vec![Perm::new(PermKind::None, 0), Perm::new(PermKind::Read, 5)]
    );
    assert!(parse_perms(MsgType::GetPerms, b"").is_err());
    assert!(parse_perms(MsgType::GetPerms, b"x0\0").is_err());
    assert_eq!(
        parse_tx_id(MsgType::TransactionStart, b"17\0").unwrap(),
        crate::TxId(17)
    );
    assert!(parse_tx_id(MsgType::TransactionStart, b"x\0").is_err());
    assert!(parse_bool(MsgType::IsDomainIntroduced, b"T\0").unwrap());
    assert!(!parse_bool(MsgType::IsDomainIntroduced, b"F\0").unwrap());
    assert_eq!(
        parse_string(MsgType::GetDomainPath, b"/local/domain/3\0").unwrap(),
        "/local/domain/3"
    );
    let ev = parse_watch_event(b"/a/b\0tok\0").unwrap();
    assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/a/b", "tok"));
    assert!(parse_watch_event(b"/a\0").is_err());
}

#[test]
fn directory_part_parse_and_build_agree() {
    // Build a child list larger than one message, cut it into parts the
    // way xenstored does, and read it back the way the client does.
    let names: Vec<String> = (0..500)
        .map(|i| format!("child-{i:04}-{}", "x".repeat(i % 37)))
        .collect();
    let children = list_payload(&names);
    let mut off = 0;
    let mut got = Vec::new();
    let mut parts = 0;
    loop {
        let payload = directory_part_payload("1a", &children, off);
        assert!(payload.len() <= PAYLOAD_MAX);
        let part = parse_directory_part(&payload).unwrap();
        assert_eq!(part.generation, "1a");
        got.extend(part.children);
        off += part.chunk_len;
        parts += 1;
        if part.complete {
            break;
        }
    }
    assert!(parts > 2);
    assert_eq!(got, names);
    // Past the end: "gen\0\0"; empty directory likewise.
    assert_eq!(
        directory_part_payload("7", &children, children.len()),
        b"7\0\0"
    );
    assert_eq!(directory_part_payload("7", b"", 0), b"7\0\0");
    let p = parse_directory_part(b"7\0\0").unwrap();
    assert!(p.complete && p.children.is_empty() && p.chunk_len == 0);
    let p = parse_directory_part(b"7\0a\0b\0\0").unwrap();
    assert!(p.complete);
    assert_eq!((p.children.len(), p.chunk_len), (2, 4));
    let p = parse_directory_part(b"7\0a\0b\0").unwrap();
    assert!(!p.complete);
    assert!(parse_directory_part(b"7").is_err());
    assert!(parse_directory_part(b"7\0a").is_err());
}

#[test]
fn error_message_and_round_trip() {
    let m = error_message(5, crate::TxId(2), Errno::EACCES);
    let mut d = Decoder::new();
    d.push(&m.encode());
    let back = d.next_message().unwrap().unwrap();
    assert_eq!(back.msg_type(), Ok(MsgType::Error));
    assert_eq!(back.header.req_id, 5);
    assert_eq!(
        parse_error(MsgType::Read, &back.payload).unwrap(),
        Errno::EACCES
    );
}

#[test]
fn split_strings_edge_cases() {
    assert_eq!(split_strings(b""), Some(vec![]));
    assert_eq!(split_strings(b"\0"), Some(vec![""]));
    assert_eq!(split_strings(b"a\0\0"), Some(vec!["a", ""]));
    assert_eq!(split_strings(b"a"), None);
    assert_eq!(split_strings(b"\xff\0"), None);
}
