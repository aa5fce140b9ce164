//! `vusb usb-release <dom>`: remove every USB controller and device of a
//! domain that is going away and give every device back to its host
//! driver (what libxl does inside domain destroy); see
//! `vusb_core::ops::usb_release`. Silent on success, exit 0; exit 1 with
//! the first failure after trying everything.

use std::process::ExitCode;

use vusb_core::ops::OpEnv;
use vusb_core::ops::usb_release::usb_release;

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usb-release",
    usage: "<Domain>",
    desc: "Remove every USB controller and device of a domain and give the devices back to the host",
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
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        ..OpEnv::new(&xs, &ctx.paths)
    };
    match usb_release(&env, &dom) {
        Ok(r) => {
            log::info!(
                "domain {}: released controllers {:?}, stale records {:?}",
                dom.domid,
                r.controllers,
                r.stale_records
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(xl_args::fail(ctx, &e, None)),
    }
}
