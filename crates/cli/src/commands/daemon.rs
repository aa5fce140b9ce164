//! `vusb daemon [--uevents netlink|none|unix:PATH]`: run the rule daemon
//! in the foreground (`vusb_core::daemon`; systemd unit `vusbd.service`,
//! `Type=notify`). Audit lines and errors go to stderr (the journal under
//! systemd). Runs until an event source fails (exit 1) or it is killed;
//! exit 2 on a usage error.

use std::process::ExitCode;

use vusb_core::daemon::{self, DaemonConfig, Tuning, UeventSource};

use crate::context::Context;

const USAGE: &str = "usage: vusb daemon [--uevents netlink|none|unix:PATH]";

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let mut uevents = UeventSource::Netlink;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "--uevents" => it.next().map(String::as_str),
            other => other.strip_prefix("--uevents="),
        };
        uevents = match value.and_then(UeventSource::parse) {
            Some(source) => source,
            None => {
                eprintln!("{USAGE}");
                return Ok(ExitCode::from(2));
            }
        };
    }
    let cfg = DaemonConfig {
        paths: ctx.paths.clone(),
        uevents,
        tuning: Tuning::default(),
    };
    daemon::run(&cfg)?;
    Ok(ExitCode::SUCCESS)
}
