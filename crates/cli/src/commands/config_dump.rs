//! `vusb config-dump <dom>`: what vusb saved for the guest (its USB
//! configuration, hot-plugged devices included), in the `config-show`
//! JSON shape; see `vusb_core::ops::config_dump`. Exit 1 when nothing is
//! saved for it.

use std::process::ExitCode;

use vusb_core::ops::OpEnv;
use vusb_core::ops::config_dump::config_dump;

use super::config_show::pretty_json;
use super::xl_args::{self, XlCmd};
use crate::context::Context;
use crate::output::out;

const CMD: XlCmd = XlCmd {
    name: "config-dump",
    usage: "<Domain>",
    desc: "Print the USB configuration vusb saved for a domain, as JSON",
    modifies: false,
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
    let env = OpEnv::new(&xs, &ctx.paths);
    match config_dump(&env, &dom) {
        Ok(cfg) => {
            out(&pretty_json(&vusb_xlcfg::json::to_json(&cfg))?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(xl_args::fail(ctx, &e, None)),
    }
}
