//! `vusb usbctrl-detach <dom> <devid>`: xl's arguments (`atoi` of the
//! devid, extra arguments ignored), messages and exit status; see
//! `vusb_core::ops::usbctrl_detach`.

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
    let xs = xl_args::open_xenstore()?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let devid = xl_args::atoi(&pos[1]);
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
