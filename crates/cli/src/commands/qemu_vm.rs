//! The xl-style commands for a plain QEMU/KVM VM (`vusb --qmp PATH ...`).
//! Not implemented yet: its owner replaces this file.

use std::path::Path;
use std::process::ExitCode;

use crate::context::Context;

/// Run `command` (an xl-style command name) against the VM behind `qmp`.
pub fn run(_ctx: &Context, _qmp: &Path, _command: &str, _args: &[String]) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
