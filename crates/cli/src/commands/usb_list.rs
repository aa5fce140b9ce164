//! `vusb usb-list <dom>`: xl 4.17's output byte for byte (extra arguments
//! → `Invalid arguments.`, exit 255, as xl); `--json` (a vusb extension,
//! accepted anywhere) prints the schema of `docs/cli-json.md`.

use std::process::ExitCode;

use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_list::{format_xl, usb_list};

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usb-list",
    usage: "<Domain>",
    desc: "List information about all USB controllers and devices for a domain",
    modifies: false,
    min_args: 1,
};

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let json = args.iter().any(|a| a == "--json");
    let args: Vec<String> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let pos = match xl_args::positional(&CMD, &args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if pos.len() > 1 {
        eprintln!("Invalid arguments.");
        return Ok(ExitCode::from(255));
    }
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let env = OpEnv::new(&xs, &ctx.paths);
    let list = match usb_list(&env, &dom) {
        Ok(l) => l,
        Err(e) => return Ok(xl_args::fail(ctx, &e, None)),
    };
    if json {
        let mut text = serde_json::to_string_pretty(&list)?;
        text.push('\n');
        crate::output::out(&text);
    } else {
        crate::output::out(&format_xl(&list));
    }
    Ok(ExitCode::SUCCESS)
}
