//! `vusb usb-rule-add <dom> <selector...> [mode=auto|required] [priority=N]`
//! and `vusb usb-rule-add --config FILE`: store an assignment rule for
//! `vusb daemon` (`vusb_core::rules`). The domain is a name or uuid, never
//! a domid. Prints the new rule's id. Exit 0 added, 1 refused (the reason
//! on stderr, nothing stored), 2 usage.

use std::process::ExitCode;

use anyhow::Context as _;
use vusb_core::rules::{self, NewRule};

use crate::context::Context;
use crate::output::out;

const USAGE: &str = "usage: vusb usb-rule-add <domain-name|uuid> <selector>... [mode=auto|required] [priority=N]\n       vusb usb-rule-add --config FILE";

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    match args {
        [flag, file] if flag == "--config" => from_config(ctx, file),
        [h] if h == "-h" || h == "--help" => {
            out(&format!("{USAGE}\n"));
            Ok(ExitCode::SUCCESS)
        }
        [dom, sel @ ..] if !sel.is_empty() && !dom.starts_with('-') => {
            let new = NewRule::from_args(dom, sel)?;
            let rule = rules::add(&ctx.paths, &new)?;
            out(&format!("{}\n", rule.id));
            super::daemon_status::poke(ctx);
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

fn from_config(ctx: &Context, file: &str) -> anyhow::Result<ExitCode> {
    // Bounded like every config file (a FIFO or /dev/zero is refused).
    let bytes = vusb_core::small_file::read(
        std::path::Path::new(file),
        vusb_core::small_file::MAX_CONFIG_FILE,
    )
    .with_context(|| format!("reading {file}"))?;
    let text = String::from_utf8(bytes).with_context(|| format!("reading {file}: not UTF-8"))?;
    let Some(list) = rules::from_config(&text, file)? else {
        anyhow::bail!("{file} has no vusb_rules");
    };
    let added = rules::install_config(&ctx.paths, file, &list)?;
    for r in added {
        out(&format!("{}\n", r.id));
    }
    super::daemon_status::poke(ctx);
    Ok(ExitCode::SUCCESS)
}
