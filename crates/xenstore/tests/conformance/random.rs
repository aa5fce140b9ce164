//! Random request scripts on both stores, every result compared: raw
//! wire scripts on two dom0 connections (transactions left open and
//! interleaved), and typed operations of dom0 and a guest.
//! `VUSB_DIFF_SEEDS=N` adds seeds, `VUSB_DIFF_SEED=<hex>` replays one wire
//! script, `VUSB_DIFF_DUMP=<file>` writes wire transcripts side by side.

use std::time::Duration;

use super::backend::{Backend, Mem, Real};
use super::raw::{Raw, ty, z};

type Msg = (u32, u32, Vec<u8>);

fn w(p: &str, v: &str) -> Vec<u8> {
    [z(&[p]), v.as_bytes().to_vec()].concat()
}

/// Deterministic pseudo-random requests (xorshift), so a failure can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Random requests over a small set of paths on two connections; after
/// each step the other connection syncs with a cheap request, so every
/// event is in both transcripts at a deterministic place.
fn random_script(seed: u64, steps: usize) -> Vec<(usize, u32, u32, Vec<u8>)> {
    let paths = [
        "/f", "/f/a", "/f/a/b", "/f/c", "/f/a/b/d", "/g", "rel", "rel/x", "/f/a/e",
    ];
    let perms = ["n0", "r3", "b0", "w2", "n7"];
    let mut r = Rng(seed);
    let mut out = Vec::new();
    for _ in 0..steps {
        let c = (r.next() % 2) as usize;
        // Transaction id 0 mostly; else a small id that may or may not be open.
        let tx = if r.next().is_multiple_of(3) {
            (r.next() % 3) as u32
        } else {
            0
        };
        let p = r.pick(&paths);
        let (t, payload) = match r.next() % 12 {
            0 | 1 => (ty::WRITE, w(p, r.pick(&["", "v", "value-2"]))),
            2 => (ty::MKDIR, z(&[p])),
            3 => (ty::RM, z(&[p])),
            4 => (ty::READ, z(&[p])),
            5 => (ty::DIRECTORY, z(&[p])),
            6 => (ty::GET_PERMS, z(&[p])),
            7 => (ty::SET_PERMS, z(&[p, r.pick(&perms), r.pick(&perms)])),
            8 => (ty::WATCH, z(&[p, r.pick(&["t1", "t2"])])),
            9 => (ty::UNWATCH, z(&[p, r.pick(&["t1", "t2"])])),
            10 => (ty::TRANSACTION_START, z(&[""])),
            _ => (ty::TRANSACTION_END, z(&[r.pick(&["T", "T", "F"])])),
        };
        let tx = if t == ty::TRANSACTION_START { 0 } else { tx };
        out.push((c, t, tx, payload));
        out.push((1 - c, ty::GET_DOMAIN_PATH, 0, z(&["0"])));
    }
    out
}

fn run_synced(b: &dyn Backend, script: &[(usize, u32, u32, Vec<u8>)]) -> Vec<Vec<Msg>> {
    let mut conns = [Raw::connect(b.socket()), Raw::connect(b.socket())];
    script
        .iter()
        .enumerate()
        .map(|(i, (c, t, tx, payload))| {
            let id = conns[*c].send(*t, *tx, payload);
            let mut got = Vec::new();
            loop {
                let m = conns[*c]
                    .recv(Duration::from_secs(5))
                    .unwrap_or_else(|| panic!("{}: step {i}: no reply", b.name()));
                let done = m.1 == id && m.0 != ty::WATCH_EVENT;
                got.push(m);
                if done {
                    return got;
                }
            }
        })
        .collect()
}

#[test]
fn random_scripts_agree() {
    // VUSB_DIFF_SEEDS=N runs N more seeds (1000 steps each) for a soak.
    let extra: u64 = std::env::var("VUSB_DIFF_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // VUSB_DIFF_SEED=S (hex) replays that one seed only.
    let only = std::env::var("VUSB_DIFF_SEED")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
    let fixed = [
        (0x9e37_79b9_7f4a_7c15u64, 400),
        (42, 400),
        (7_777_777, 400),
        (0x2545_f491_4f6c_dd1d, 1000),
        (0x4a8b_e922_9ed9_ba3a, 1000),
    ];
    let seeds: Vec<(u64, usize)> = match only {
        Some(s) => vec![(s, 1000)],
        None => fixed
            .into_iter()
            .chain((1..=extra).map(|i| (i.wrapping_mul(0x2545_f491_4f6c_dd1d), 1000)))
            .collect(),
    };
    let mut failed = Vec::new();
    for (seed, steps) in seeds {
        let script = random_script(seed, steps);
        let Some(real) = Real::start("random_scripts_agree") else {
            return;
        };
        let want = run_synced(&real, &script);
        let got = run_synced(&Mem::start(), &script);
        if let Some(path) = std::env::var_os("VUSB_DIFF_DUMP") {
            dump(
                &format!("{}-{seed}", path.to_string_lossy()),
                &script,
                &want,
                &got,
            );
        }
        if let Some(i) = (0..want.len()).find(|&i| want[i] != got[i]) {
            eprintln!(
                "seed {seed:#x} step {i}: {:?}\n  real {:?}\n  mem  {:?}",
                script[i], want[i], got[i]
            );
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "diverging seeds: {failed:x?}");
}

/// Writes a readable side-by-side transcript (for `VUSB_DIFF_DUMP`).
fn dump(path: &str, script: &[(usize, u32, u32, Vec<u8>)], want: &[Vec<Msg>], got: &[Vec<Msg>]) {
    let show = |m: &Vec<Msg>| {
        m.iter()
            .map(|(t, _, b)| format!("{t}:{}", String::from_utf8_lossy(b).replace('\0', "|")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut text = String::new();
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let (c, t, tx, p) = &script[i];
        let mark = if w == g { "" } else { "  <<<<< DIFF" };
        text += &format!(
            "{i} c{c} t{t} tx{tx} {}\n   real {}\n   mem  {}{mark}\n",
            String::from_utf8_lossy(p).replace('\0', "|"),
            show(w),
            show(g)
        );
    }
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("cannot write {path}: {e}");
    }
}

/// Random node operations by dom0 and an unprivileged guest (dom5: a ring
/// on the real daemon, a domain socket on the memory server), every
/// result compared: permissions, ownership rewrites, errors.
#[test]
fn random_guest_operations_agree() {
    use vusb_xenstore::{Perm, TxId, Xenstore};
    fn script(b: &dyn Backend, seed: u64, steps: usize) -> Vec<String> {
        let paths = [
            "/f",
            "/f/a",
            "/f/a/b",
            "/g",
            "/local/domain/5",
            "/local/domain/5/x",
            "x",
            "x/y",
        ];
        let perms: [&[&str]; 8] = [
            &["n0"],
            &["n0", "r5"],
            &["n0", "w5"],
            &["n0", "b5"],
            &["n5"],
            &["r0"],
            &["b5", "n0"],
            &["n5", "r0"],
        ];
        let dom0 = b.dom0();
        let guest = b.guest(&dom0, 5);
        let mut r = Rng(seed);
        let t0 = TxId::NONE;
        let show = |res: vusb_xenstore::Result<String>| match res {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("err {:?}", e.errno()),
        };
        (0..steps)
            .map(|i| {
                let g = r.next() % 2 == 1;
                let c: &dyn Xenstore = if g { guest.as_ref() } else { &dom0 };
                let p = r.pick(&paths);
                let op = r.next() % 7;
                let res = match op {
                    0 | 1 => c
                        .write(t0, p, format!("v{i}").as_bytes())
                        .map(|_| String::new()),
                    2 => c.mkdir(t0, p).map(|_| String::new()),
                    3 => c.rm(t0, p).map(|_| String::new()),
                    4 => c
                        .read(t0, p)
                        .map(|v| String::from_utf8_lossy(&v).into_owned()),
                    5 => c.directory(t0, p).map(|v| v.join(",")),
                    _ => {
                        let ps = perms[(r.next() % perms.len() as u64) as usize];
                        let ps: Vec<Perm> = ps.iter().map(|s| s.parse().unwrap()).collect();
                        c.set_perms(t0, p, &ps)
                            .and_then(|_| {
                                dom0.get_perms(
                                    t0,
                                    if p.starts_with('/') {
                                        p
                                    } else {
                                        "/local/domain/5"
                                    },
                                )
                            })
                            .map(|v| {
                                v.iter()
                                    .map(|p| p.to_string())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                    }
                };
                format!(
                    "{i} {} op{op} {p}: {}",
                    if g { "g" } else { "0" },
                    show(res)
                )
            })
            .collect()
    }
    let extra: u64 = std::env::var("VUSB_DIFF_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let seeds = [1u64, 0xdead_beef, 0x1234_5678_9abc]
        .into_iter()
        .chain((1..=extra).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    for seed in seeds {
        let Some(real) = Real::start("random_guest_operations_agree") else {
            return;
        };
        let want = script(&real, seed, 300);
        let got = script(&Mem::start(), seed, 300);
        if let Some(i) = (0..want.len()).find(|&i| want[i] != got[i]) {
            panic!(
                "seed {seed:#x}: real and memory differ at\n  real {}\n  mem  {}\nafter\n{}",
                want[i],
                got[i],
                want[..i].join("\n")
            );
        }
        assert!(
            want.iter().any(|l| l.contains("EACCES")),
            "the script reaches EACCES"
        );
        assert!(
            want.iter()
                .any(|l| l.contains(" g op") && l.contains(": ok")),
            "and guest successes"
        );
    }
}
