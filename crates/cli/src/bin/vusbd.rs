//! `vusbd`: the rule daemon alone (`vusb daemon` without the rest of the
//! CLI), for a smaller resident set: `vusbd [-v...] [--uevents
//! netlink|none|unix:PATH]`. Host locations come from the environment
//! (`VUSB_STATE_DIR`, `VUSB_SYSFS_ROOT`, ... as for `vusb`). Exit status:
//! 1 when an event source fails or another daemon runs, 2 usage.

#[path = "../logging.rs"]
mod logging;

use std::process::ExitCode;

use vusb_core::HostPaths;
use vusb_core::daemon::{self, DaemonConfig, Tuning, UeventSource};

const USAGE: &str = "usage: vusbd [-v...] [--uevents netlink|none|unix:PATH]";

fn main() -> ExitCode {
    let mut uevents = UeventSource::Netlink;
    let mut verbosity = 0u8;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.is_empty() && a.starts_with('-') && a[1..].chars().all(|c| c == 'v') {
            verbosity = verbosity.saturating_add(u8::try_from(a.len() - 1).unwrap_or(u8::MAX));
            continue;
        }
        let value = match a.as_str() {
            "--uevents" => it.next().map(String::as_str),
            other => other.strip_prefix("--uevents="),
        };
        uevents = match value.and_then(UeventSource::parse) {
            Some(source) => source,
            None => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
    }
    logging::init(verbosity, false);
    let cfg = DaemonConfig {
        paths: HostPaths::from_env(),
        uevents,
        tuning: Tuning::default(),
    };
    match daemon::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vusbd: {}", vusb_host::discover::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
