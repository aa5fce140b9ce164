//! `vusb usb-rule-list [--json]`: the stored assignment rules
//! (`vusb_core::rules`), one per line (`ID DOMAIN MODE PRIORITY
//! SELECTOR`), or the rules file's `rules` array as JSON.

use std::process::ExitCode;

use vusb_core::rules;

use crate::context::Context;
use crate::output::out;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let json = match args {
        [] => false,
        [j] if j == "--json" => true,
        _ => {
            eprintln!("usage: vusb usb-rule-list [--json]");
            return Ok(ExitCode::from(2));
        }
    };
    let set = rules::load(&ctx.paths)?;
    if json {
        out(&format!("{}\n", serde_json::to_string_pretty(&set.rules)?));
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "{:<4} {:<20} {:<8} {:>8}  {}\n",
        "Id", "Domain", "Mode", "Priority", "Selector"
    );
    for r in &set.rules {
        text.push_str(&format!(
            "{:<4} {:<20} {:<8} {:>8}  {}\n",
            r.id,
            r.domain,
            r.mode.as_str(),
            r.priority,
            r.selector
        ));
    }
    out(&text);
    Ok(ExitCode::SUCCESS)
}
