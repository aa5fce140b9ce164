//! The same raw request script on both stores, every byte received on
//! both connections compared: replies, errors, watch events, their order,
//! transaction ids and the generation numbers of `DIRECTORY_PART`.

use std::time::Duration;

use super::backend::{Backend, Mem, Real};
use super::raw::{Raw, ty, z};
use vusb_testsupport::xenstored::XenstoredOptions;

type Msg = (u32, u32, Vec<u8>);

fn w(p: &str, v: &str) -> Vec<u8> {
    [z(&[p]), v.as_bytes().to_vec()].concat()
}

/// `(connection, type, tx, payload)`.
fn script() -> Vec<(usize, u32, u32, Vec<u8>)> {
    let mut s = vec![
        (1, ty::WATCH, 0, z(&["/d", "w1"])),
        (1, ty::WATCH, 0, z(&["@introduceDomain", "in"])),
        (1, ty::WATCH, 0, z(&["@releaseDomain", "out"])),
        (0, ty::WRITE, 0, w("/d/a/b", "1")),
        (0, ty::WRITE, 0, w("/d/a/c", "2")),
        (0, ty::MKDIR, 0, z(&["/d/m"])),
        (0, ty::MKDIR, 0, z(&["/d/m"])),
        (0, ty::DIRECTORY, 0, z(&["/d/a"])),
        (0, ty::DIRECTORY_PART, 0, z(&["/d/a", "0"])),
        (0, ty::DIRECTORY_PART, 0, z(&["/d", "0"])),
        (0, ty::GET_PERMS, 0, z(&["/d/a/b"])),
        (0, ty::SET_PERMS, 0, z(&["/d/a", "r3", "b4"])),
        (0, ty::WRITE, 0, w("/d/a/e", "")),
        (0, ty::GET_PERMS, 0, z(&["/d/a/e"])),
        (0, ty::TRANSACTION_START, 0, z(&[""])),
        (1, ty::TRANSACTION_START, 0, z(&[""])),
        (0, ty::READ, 1, z(&["/d/a/b"])),
        (1, ty::READ, 1, z(&["/d/a/b"])),
        (0, ty::WRITE, 1, w("/d/a/b", "t0")),
        (1, ty::WRITE, 1, w("/d/a/b", "t1")),
        (0, ty::DIRECTORY_PART, 1, z(&["/d/a", "0"])),
        (0, ty::TRANSACTION_END, 1, z(&["T"])),
        (1, ty::TRANSACTION_END, 1, z(&["T"])),
        (0, ty::TRANSACTION_START, 0, z(&[""])),
        (0, ty::RM, 2, z(&["/d/a"])),
        (0, ty::WRITE, 2, w("/d/n/o", "x")),
        (0, ty::TRANSACTION_END, 2, z(&["T"])),
        (0, ty::DIRECTORY_PART, 0, z(&["/d", "0"])),
        (0, ty::RM, 0, z(&["/d/n"])),
        (0, ty::RM, 0, z(&["/d/none"])),
        (0, ty::RM, 0, z(&["/d/none/x"])),
        (0, ty::INTRODUCE, 0, z(&["4", "1", "2"])),
        (0, ty::IS_DOMAIN_INTRODUCED, 0, z(&["4"])),
        (0, ty::WRITE, 0, w("/d/own4/k", "v")),
        (0, ty::SET_PERMS, 0, z(&["/d/own4", "n4"])),
        (0, ty::RELEASE, 0, z(&["4"])),
        (0, ty::DIRECTORY, 0, z(&["/d"])),
        (0, ty::RELEASE, 0, z(&["4"])),
        (1, ty::UNWATCH, 0, z(&["/d", "w1"])),
        (1, ty::UNWATCH, 0, z(&["/d", "w1"])),
        (0, ty::WRITE, 0, w("/d/after", "1")),
        (0, ty::GET_DOMAIN_PATH, 0, z(&["12"])),
        (0, 99, 0, Vec::new()),
    ];
    for i in 0..40 {
        s.push((
            0,
            ty::WRITE,
            0,
            w(&format!("/d/many/entry-with-a-long-name-{i:03}"), ""),
        ));
    }
    s.push((0, ty::DIRECTORY, 0, z(&["/d/many"])));
    s.push((0, ty::DIRECTORY_PART, 0, z(&["/d/many", "0"])));
    s.push((0, ty::DIRECTORY_PART, 0, z(&["/d/many", "100"])));
    s
}

fn run(b: &dyn Backend) -> Vec<(usize, Vec<Msg>)> {
    let mut conns = [Raw::connect(b.socket()), Raw::connect(b.socket())];
    let quiet = Duration::from_millis(30);
    let mut out = Vec::new();
    for (i, (c, t, tx, payload)) in script().into_iter().enumerate() {
        let id = conns[c].send(t, tx, &payload);
        let mut got = Vec::new();
        loop {
            let m = conns[c]
                .recv(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("{}: step {i}: no reply", b.name()));
            let done = m.1 == id && m.0 != ty::WATCH_EVENT;
            got.push(m);
            if done {
                break;
            }
        }
        got.extend(conns[c].drain(quiet));
        out.push((c, got));
        out.push((1 - c, conns[1 - c].drain(quiet)));
    }
    out
}

#[test]
fn wire_transcripts_are_identical() {
    let opts = XenstoredOptions {
        trace: true,
        ..XenstoredOptions::default()
    };
    let Some(real) = Real::start_with("wire_transcripts_are_identical", &opts) else {
        return;
    };
    let before = real.xs.trace_requests().unwrap().len();
    let want = run(&real);
    let traced = real.xs.trace_requests().unwrap().len() - before;
    assert_eq!(traced, script().len(), "the trace counts every request");
    let got = run(&Mem::start());
    assert_eq!(want.len(), got.len());
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "step {}: {:?}", i / 2, script()[i / 2]);
    }
}

/// libxenstore's own tools (`xenstore-write`, `-ls`, ...) against both
/// stores: same output, same exit status.
#[test]
fn c_tools_see_the_same_store() {
    let cmds: &[&[&str]] = &[
        &["xenstore-write", "/c/a", "1", "/c/b/x", "two words"],
        &["xenstore-read", "/c/a", "/c/b/x"],
        &["xenstore-read", "/c/none"],
        &["xenstore-exists", "/c/b"],
        &["xenstore-exists", "/c/none"],
        &["xenstore-chmod", "/c/b", "n0", "r5"],
        &["xenstore-ls", "-p", "/c"],
        &["xenstore-list", "/c"],
        &["xenstore-rm", "/c/b"],
        &["xenstore-ls", "-f", "/"],
        &["xenstore-rm", "/c/none"],
        &["xenstore-write", "/c/bad path", "x"],
    ];
    let Some(real) = Real::start("c_tools_see_the_same_store") else {
        return;
    };
    let mem = Mem::start();
    let run = |b: &dyn Backend| -> Vec<(String, String, Option<i32>)> {
        cmds.iter()
            .map(|c| {
                let o = std::process::Command::new(c[0])
                    .args(&c[1..])
                    .env("XENSTORED_PATH", b.socket())
                    .env_remove("LD_PRELOAD")
                    .output()
                    .unwrap_or_else(|e| panic!("{}: {e}", c[0]));
                (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                    o.status.code(),
                )
            })
            .collect()
    };
    let want = run(&real);
    let got = run(&mem);
    assert!(
        want[6].0.contains("n0, r5") || want[6].0.contains("n0,r5"),
        "{:?}",
        want[6]
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "{:?}", cmds[i]);
    }
}
