//! `vusb usbdev-attach <dom> hostbus=B hostaddr=A [controller=C [port=P]]`
//! (and vusb's `busid=`, `vendor=`/`product=`/`serial=`, `portpath=`, and
//! `type=tablet|mouse|keyboard` for QEMU's emulated devices on devicemodel
//! controllers of HVM guests):
//! xl's arguments, output (none) and exit status; see
//! `vusb_core::ops::usbdev_attach`.

use std::process::ExitCode;

use vusb_core::ops::OpEnv;
use vusb_core::ops::usbdev_attach::usbdev_attach;

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usbdev-attach",
    usage: "<Domain> hostbus=<busnum> hostaddr=<devnum> [controller=<DevId> [port=<port>]]",
    desc: "Attach a USB device to a domain",
    modifies: true,
    min_args: 2,
};

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    // vusb's `--force` (anywhere: xl's arguments are key=value words) lets
    // a device the host is using through; the rest is xl's syntax.
    let force = args.iter().any(|a| a == "--force");
    let args: Vec<String> = args.iter().filter(|a| *a != "--force").cloned().collect();
    let pos = match xl_args::positional(&CMD, &args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let spec = match vusb_xlcfg::parse_usbdev_args(&pos[1..]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(e) = vusb_core::ops::hostdev::single_identity(&spec) {
        let line = Some("libxl_device_usbdev_add failed.");
        return Ok(xl_args::fail_spec(ctx, &e, line, Some(&spec)));
    }
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        force,
        ..OpEnv::new(&xs, &ctx.paths)
    };
    match usbdev_attach(&env, &dom, &spec) {
        Ok(a) => {
            for n in &a.notices {
                eprintln!("vusb: notice: {n}");
            }
            let what = match a.emulated {
                Some(k) => format!("emulated {}", k.spec_name()),
                None => a
                    .busid
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            };
            log::info!(
                "domain {}: {what} at controller {} port {}",
                dom.domid,
                a.ctrl,
                a.port
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(xl_args::fail_spec(
            ctx,
            &e,
            Some("libxl_device_usbdev_add failed."),
            Some(&spec),
        )),
    }
}
