//! Many `vusb` processes at once: spawn, wait with a deadline, classify.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::Bed;

/// How one process ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Its arguments.
    pub args: Vec<String>,
    /// Exit code (`None`: killed by a signal, or by us at the deadline).
    pub code: Option<i32>,
    /// Its stderr.
    pub stderr: String,
    /// Still running at the deadline (then killed).
    pub hung: bool,
}

impl Ended {
    /// Exit 0 or 1 (a refusal): anything else is a crash or a hang.
    pub fn sane(&self) -> bool {
        !self.hung && matches!(self.code, Some(0) | Some(1))
    }
}

/// Start one process.
pub fn spawn(bed: &Bed, args: &[String]) -> Child {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    bed.command(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for every child; those still running after `limit` are killed
/// and reported as hung.
pub fn wait_all(children: Vec<(Vec<String>, Child)>, limit: Duration) -> Vec<Ended> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    for (args, mut c) in children {
        let mut hung = false;
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                hung = true;
                let _ = c.kill();
                break c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stderr = String::new();
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        out.push(Ended {
            args,
            code: status.and_then(|s| s.code()),
            stderr,
            hung,
        });
    }
    out
}

/// A small deterministic generator (xorshift), so a failing mix can be
/// replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    /// Next value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Turn `&str` argument lists into owned ones.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}
