//! `vusb usb-rule-explain <id> [--json]`: which host devices rule `id`
//! matches and why, which it does not and why not, and what the daemon
//! does with it now (`vusb_core::rules::explain`). Without a reachable
//! xenstore, domains and assignments are unknown and the command fails.

use std::process::ExitCode;

use vusb_core::rules;

use super::usb_rule_remove::parse_id;
use crate::context::Context;
use crate::output::out;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let json = args.iter().any(|a| a == "--json");
    let rest: Vec<String> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let Some(id) = parse_id(&rest) else {
        eprintln!("usage: vusb usb-rule-explain <id> [--json]");
        return Ok(ExitCode::from(2));
    };
    let rule = rules::get(&ctx.paths, id)?;
    let xs = vusb_xenstore::client::Client::open()?;
    let e = rules::explain(&xs, &ctx.paths, &rule)?;
    if json {
        out(&format!("{}\n", serde_json::to_string_pretty(&e)?));
    } else {
        out(&rules::format_text(&e));
    }
    Ok(ExitCode::SUCCESS)
}
