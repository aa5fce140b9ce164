//! `vusb-bench xenstore [--iterations N] [--rounds R]`: round trips per
//! second of the vusb xenstore client next to libxenstore, against one
//! private real xenstored, in the same run.
//!
//! Timed operations, each `N` times on one connection: `READ` of a small
//! value, `WRITE` of a small value, and a read-modify-write transaction
//! (`TRANSACTION_START`, `READ`, `WRITE`, `TRANSACTION_END` commit, retried
//! on `EAGAIN`). The C side is `xs_c_bench.c`, compiled here with gcc and
//! linked to `-lxenstore`. After one untimed warm-up of each side, the two
//! sides alternate for `R` rounds and the median rate of each is printed,
//! to dampen noise from other load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vusb_xenstore::client::Client;
use vusb_xenstore::{TxId, Xenstore};

const C_SOURCE: &str = include_str!("xs_c_bench.c");

struct Options {
    iterations: u64,
    rounds: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        iterations: 20_000,
        rounds: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--iterations" | "-n" => o.iterations = value(a)?.parse().context("--iterations")?,
            "--rounds" => o.rounds = value(a)?.parse().context("--rounds")?,
            "-h" | "--help" => {
                println!("usage: vusb-bench xenstore [--iterations N] [--rounds R]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if o.iterations == 0 || o.rounds == 0 {
        bail!("--iterations and --rounds must be at least 1");
    }
    Ok(o)
}

fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testsupport/harness")
        .join(script)
}

/// A private xenstored, stopped on drop.
struct Daemon {
    dir: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path) -> anyhow::Result<Daemon> {
        let out = Command::new(harness("start.sh"))
            .arg(dir)
            .output()
            .context("running the xenstored harness start.sh")?;
        if !out.status.success() {
            bail!("start.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let socket = text
            .lines()
            .find_map(|l| l.strip_prefix("XENSTORED_PATH="))
            .context("start.sh printed no XENSTORED_PATH")?;
        Ok(Daemon {
            dir: dir.to_path_buf(),
            socket: PathBuf::from(socket),
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new(harness("stop.sh")).arg(&self.dir).output();
    }
}

/// Nanoseconds for the three operations.
#[derive(Clone, Copy)]
struct Times {
    read: Duration,
    write: Duration,
    rmw: Duration,
}

fn time(n: u64, mut op: impl FnMut(u64) -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for i in 0..n {
        op(i)?;
    }
    Ok(start.elapsed())
}

fn run_vusb(socket: &Path, n: u64) -> anyhow::Result<Times> {
    let c = Client::connect(socket)?;
    let path = "/bench/vusb/k";
    c.write(TxId::NONE, path, b"0")?;
    let read = time(n, |_| {
        c.read(TxId::NONE, path)?;
        Ok(())
    })?;
    let write = time(n, |i| {
        Ok(c.write(TxId::NONE, path, i.to_string().as_bytes())?)
    })?;
    let rmw = time(n, |_| {
        vusb_xenstore::transaction(&c, 32, |tx| {
            let v = c.read(tx, path)?;
            let v: u64 = String::from_utf8_lossy(&v).parse().unwrap_or(0);
            c.write(tx, path, (v + 1).to_string().as_bytes())
        })?;
        Ok(())
    })?;
    Ok(Times { read, write, rmw })
}

fn build_c(dir: &Path) -> anyhow::Result<PathBuf> {
    let src = dir.join("xs_c_bench.c");
    let bin = dir.join("xs_c_bench");
    std::fs::write(&src, C_SOURCE).with_context(|| format!("writing {}", src.display()))?;
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "gcc".into()))
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lxenstore")
        .output()
        .context("running gcc")?;
    if !out.status.success() {
        bail!(
            "gcc failed (is libxen-dev installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

fn run_c(bin: &Path, socket: &Path, n: u64) -> anyhow::Result<Times> {
    let out = Command::new(bin)
        .arg(n.to_string())
        .arg("/bench/c/k")
        .env("XENSTORED_PATH", socket)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "xs_c_bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> anyhow::Result<Duration> {
        let ns = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.split_whitespace().next())
            .with_context(|| format!("xs_c_bench printed no {name}: {text}"))?;
        Ok(Duration::from_nanos(ns.parse()?))
    };
    Ok(Times {
        read: field("read ")?,
        write: field("write ")?,
        rmw: field("rmw ")?,
    })
}

fn median_rate(n: u64, mut times: Vec<Duration>) -> f64 {
    times.sort();
    let mid = times[times.len() / 2];
    n as f64 / mid.as_secs_f64().max(1e-9)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}")
}

/// Runs the benchmark and prints the table.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let dir = tempfile::Builder::new()
        .prefix("vusb-bxs-")
        .tempdir_in("/tmp")
        .context("creating a temporary directory")?;
    let bin = build_c(dir.path())?;
    let daemon = Daemon::start(&dir.path().join("xs"))?;
    // One untimed warm-up of each side: the daemon's first requests and
    // the first connection are slower and would bias whoever goes first.
    let warmup = o.iterations.min(2000);
    run_vusb(&daemon.socket, warmup)?;
    run_c(&bin, &daemon.socket, warmup)?;
    let mut v = Vec::new();
    let mut c = Vec::new();
    for round in 0..o.rounds {
        eprintln!("round {} of {}", round + 1, o.rounds);
        // Alternate who goes first, so drift in background load is shared.
        if round % 2 == 0 {
            v.push(run_vusb(&daemon.socket, o.iterations)?);
            c.push(run_c(&bin, &daemon.socket, o.iterations)?);
        } else {
            c.push(run_c(&bin, &daemon.socket, o.iterations)?);
            v.push(run_vusb(&daemon.socket, o.iterations)?);
        }
    }
    drop(daemon);
    let n = o.iterations;
    println!("machine: {}", machine());
    println!(
        "iterations per operation: {n}, rounds: {} (median shown)",
        o.rounds
    );
    println!();
    println!("| operation | vusb ops/s | libxenstore ops/s | ratio (vusb / C) |");
    println!("|---|---:|---:|---:|");
    type Column = fn(&Times) -> Duration;
    let rows: [(&str, Column); 3] = [
        ("READ", |t| t.read),
        ("WRITE", |t| t.write),
        ("read-modify-write transaction", |t| t.rmw),
    ];
    for (name, get) in rows {
        let rv = median_rate(n, v.iter().map(get).collect());
        let rc = median_rate(n, c.iter().map(get).collect());
        println!("| {name} | {rv:.0} | {rc:.0} | {:.2} |", rv / rc);
    }
    Ok(())
}
