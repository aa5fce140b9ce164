//! `vusb -N`: printing the plan a dry run recorded ([`vusb_core::dryrun`]).
//!
//! The commands run as usual with the plan in their host paths; afterwards
//! a changing command prints, on stdout, one line per change it would have
//! made, then `vusb: dry run: nothing was changed`. A command that fails
//! prints its usual error and exit status, then that last line on stderr.
//! With `--json` the plan is one JSON document instead: `command`,
//! `output` (what the command printed), `effects` (each
//! [`vusb_core::dryrun::Effect::to_json`]) and `changed: false`.
//! Read-only commands print what they always print. Unlike xl, which
//! refuses `-N` for its USB commands ("command does not implement -N
//! (dryrun) option", exit 1), every vusb command but `daemon` and `sim`
//! accepts it.

use std::process::ExitCode;

use crate::context::Context;
use crate::output;

/// The commands that change something, whose plan is printed.
pub const CHANGING: &[&str] = &[
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-release",
    "usb-recover",
    "config-apply",
    "usb-rule-add",
    "usb-rule-remove",
];

/// The commands that refuse `-N` (they run for long or manage processes
/// that are the point of running them), with xl's message and status.
pub fn refuses(command: &str) -> Option<ExitCode> {
    if !matches!(command, "daemon" | "sim") {
        return None;
    }
    eprintln!("command does not implement -N (dryrun) option");
    eprintln!("vusb: {command} cannot be dry-run; nothing was changed");
    Some(ExitCode::FAILURE)
}

/// The last line of every dry run.
pub const NOTHING_CHANGED: &str = "vusb: dry run: nothing was changed";

/// After `command` ended with `code`: print the plan (success) or the
/// reassurance (failure).
pub fn finish(ctx: &Context, command: &str, code: ExitCode) -> ExitCode {
    let Some(plan) = ctx.paths.dry_run.as_ref() else {
        return code;
    };
    if !CHANGING.contains(&command) {
        return code;
    }
    let printed = output::take_captured();
    if code != ExitCode::SUCCESS {
        if let Some(p) = printed {
            output::out(&p);
        }
        eprintln!("{NOTHING_CHANGED}");
        return code;
    }
    let effects = plan.effects();
    if let Some(printed) = printed {
        let doc = serde_json::json!({
            "command": command,
            "output": printed,
            "effects": effects.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            "changed": false,
        });
        output::out(&format!("{doc:#}\n"));
        return code;
    }
    let mut text = String::new();
    for e in &effects {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    if effects.is_empty() {
        text.push_str("vusb: dry run: there is nothing to change\n");
    }
    text.push_str(NOTHING_CHANGED);
    text.push('\n');
    output::out(&text);
    code
}
