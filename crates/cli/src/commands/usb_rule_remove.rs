//! `vusb usb-rule-remove <id>`: forget an assignment rule. A device the
//! rule attached stays where it is (detach it with `usbdev-detach`).

use std::process::ExitCode;

use vusb_core::rules;

use crate::context::Context;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(id) = parse_id(args) else {
        eprintln!("usage: vusb usb-rule-remove <id>   (ids: vusb usb-rule-list)");
        return Ok(ExitCode::from(2));
    };
    rules::remove(&ctx.paths, id)?;
    super::daemon_status::poke(ctx);
    Ok(ExitCode::SUCCESS)
}

/// The one argument as a rule id.
pub fn parse_id(args: &[String]) -> Option<u32> {
    match args {
        [id] => id.parse().ok(),
        _ => None,
    }
}
