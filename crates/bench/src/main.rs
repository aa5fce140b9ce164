//! `vusb-bench`: benchmarks that print tables (not timed tests).
//!
//! `vusb-bench <name> [args...]`, one module per benchmark, each with
//! `pub fn run(args: &[String]) -> anyhow::Result<()>`:
//! - `xenstore`: the vusb xenstore client next to libxenstore ([`xenstore`]);
//! - `qmp`: QMP round trips ([`qmp`]);
//! - `scale`: toolstack operations against hosts with many domains ([`scale`]);
//! - `xenbed`: xl and vusb on the real Xen test bed ([`xenbed`]).
//!
//! To add one: a new module file with that `run`, one line in `BENCHES`.

mod qmp;
mod scale;
mod xenbed;
mod xenstore;

use std::process::ExitCode;

type Run = fn(&[String]) -> anyhow::Result<()>;

const BENCHES: [(&str, Run, &str); 4] = [
    (
        "xenstore",
        xenstore::run,
        "xenstore client vs libxenstore, real daemon",
    ),
    ("qmp", qmp::run, "QMP round trips"),
    ("scale", scale::run, "xl vs vusb on hosts with many domains"),
    ("xenbed", xenbed::run, "xl vs vusb on the real Xen test bed"),
];

fn usage() {
    eprintln!("usage: vusb-bench <benchmark> [args...]\n\nbenchmarks:");
    for (name, _, what) in BENCHES {
        eprintln!("  {name:<10} {what}");
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        usage();
        return ExitCode::from(2);
    };
    let Some((_, run, _)) = BENCHES.iter().find(|(n, _, _)| n == name) else {
        eprintln!("vusb-bench: unknown benchmark {name:?}");
        usage();
        return ExitCode::from(2);
    };
    match run(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vusb-bench {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
