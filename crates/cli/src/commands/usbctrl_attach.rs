//! `vusb usbctrl-attach <dom> [type=auto|pv|qusb|devicemodel] [version=N]
//! [ports=N]`: xl's arguments, output (none) and exit status; see
//! `vusb_core::ops::usbctrl_attach`.

use std::process::ExitCode;

use vusb_core::ops::OpEnv;
use vusb_core::ops::usbctrl_attach::usbctrl_attach;

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usbctrl-attach",
    usage: "<Domain> [type=pv] [version=<version>] [ports=<number>]",
    desc: "Create a virtual USB controller for a domain",
    modifies: true,
    min_args: 1,
};

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let pos = match xl_args::positional(&CMD, args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let spec = match vusb_xlcfg::parse_usbctrl_args(&pos[1..]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        ..OpEnv::new(&xs, &ctx.paths)
    };
    match usbctrl_attach(&env, &dom, &spec) {
        Ok(c) => {
            log::info!("domain {}: controller {} ({})", dom.domid, c.devid, c.ctype);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(xl_args::fail(
            ctx,
            &e,
            Some("libxl_device_usbctrl_add failed."),
        )),
    }
}
