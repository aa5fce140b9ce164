//! `vusb usb-assignable-list`. Not implemented yet: its owner replaces this file.

use std::process::ExitCode;

use crate::context::Context;

/// Run the command.
pub fn run(_ctx: &Context, _args: &[String]) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
