//! `vusb usbctrl-detach <dom> <devid>`: xl's arguments (extra arguments
//! ignored), messages and exit status; see `vusb_core::ops::usbctrl_detach`.
//! Unlike xl, whose `atoi` makes `nan` or `""` controller 0, a devid that
//! is not a number is refused (exit 1) before anything is touched.

use std::process::ExitCode;

use vusb_core::Error;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usbctrl_detach::usbctrl_detach;

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usbctrl-detach",
    usage: "<Domain> <DevId>",
    desc: "Remove the virtual USB controller specified by <DevId> for a domain",
    modifies: true,
    min_args: 2,
};

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let pos = match xl_args::positional(&CMD, args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let devid = match vusb_xlcfg::parse_number_arg("devid", &pos[1]) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        ..OpEnv::new(&xs, &ctx.paths)
    };
    match usbctrl_detach(&env, &dom, i64::from(devid), &pos[1]) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ Error::UnknownController { .. }) => Ok(xl_args::fail(ctx, &e, None)),
        Err(e) => Ok(xl_args::fail(
            ctx,
            &e,
            Some("libxl_device_usbctrl_remove failed."),
        )),
    }
}
