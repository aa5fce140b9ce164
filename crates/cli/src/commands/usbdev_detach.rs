//! `vusb usbdev-detach <dom> <controller> <port>` (xl: `atoi` of both,
//! more than three arguments → `Invalid arguments.`, exit 1; vusb refuses
//! a controller or port that is not a number, which `atoi` makes 0) and vusb's
//! `vusb usbdev-detach <dom> busid=3-1.2` (or another host selector), which
//! works even when the device was unplugged; see
//! `vusb_core::ops::usbdev_detach`.

use std::process::ExitCode;

use vusb_core::Error;
use vusb_core::ops::OpEnv;
use vusb_core::ops::usbdev_detach::{DetachTarget, usbdev_detach};

use super::xl_args::{self, XlCmd};
use crate::context::Context;

const CMD: XlCmd = XlCmd {
    name: "usbdev-detach",
    usage: "<Domain> <controller> <port>",
    desc: "Detach a USB device from a domain",
    modifies: true,
    min_args: 3,
};

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    // vusb's `<dom> KEY=VALUE...` form (busid=, vendor=/product=[/serial=],
    // hostbus=/hostaddr=, portpath=) has two or more arguments, the first
    // after the domain a `KEY=VALUE`; xl's needs three numbers.
    let rest = match xl_args::options(&CMD, args) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let host_form = rest.len() >= 2 && rest[1].contains('=');
    let pos = if host_form {
        rest
    } else {
        match xl_args::positional(&CMD, args) {
            Ok(p) => p,
            Err(code) => return Ok(code),
        }
    };
    if !host_form && pos.len() > 3 {
        eprintln!("Invalid arguments.");
        return Ok(ExitCode::FAILURE);
    }
    let numbers = if host_form {
        None
    } else {
        let parsed = vusb_xlcfg::parse_number_arg("controller", &pos[1])
            .and_then(|c| Ok((c, vusb_xlcfg::parse_number_arg("port", &pos[2])?)));
        match parsed {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &pos[0]) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let target = if let Some((ctrl, port)) = numbers {
        DetachTarget::Port { ctrl, port }
    } else {
        match vusb_xlcfg::parse_usbdev_args(&pos[1..]) {
            Ok(spec) => {
                if let Err(e) = vusb_core::ops::hostdev::single_identity(&spec) {
                    for line in crate::explain::lines(ctx, &e, Some(&spec)) {
                        eprintln!("vusb: {line}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                DetachTarget::Host(spec)
            }
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        ..OpEnv::new(&xs, &ctx.paths)
    };
    match usbdev_detach(&env, &dom, &target) {
        Ok(d) => {
            let what = match d.emulated {
                Some(k) => format!("emulated {}", k.spec_name()),
                None => d
                    .busid
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            };
            log::info!("domain {}: {what} detached", dom.domid);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (Error::UnknownDevice { .. } | Error::DeviceNotAttached { .. })) => {
            Ok(xl_args::fail(ctx, &e, None))
        }
        Err(e) => Ok(xl_args::fail(
            ctx,
            &e,
            Some("libxl_device_usbdev_remove failed."),
        )),
    }
}
