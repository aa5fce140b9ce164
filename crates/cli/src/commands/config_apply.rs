//! `vusb config-apply <dom> FILE` and `vusb config-apply <dom> --saved`:
//! attach everything an xl config file declares (or what vusb saved for
//! the guest) to the running guest; see `vusb_core::ops::config_apply`.
//! A bad file exits 1 with `FILE:LINE:COL: message` and nothing applied;
//! an entry that cannot be applied is reported at its position too.
//! On success one line per change is printed.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use vusb_core::Error;
use vusb_core::ops::OpEnv;
use vusb_core::ops::config_apply::{Applied, config_apply, config_apply_saved};

use super::config_show::load_usb_config;
use super::xl_args::{self, XlCmd};
use crate::context::Context;
use crate::output::out;
use vusb_xlcfg::{Pos, UsbConfig};

const CMD: XlCmd = XlCmd {
    name: "config-apply",
    usage: "<Domain> <ConfigFile> | <Domain> --saved",
    desc: "Attach the USB controllers and devices of a config file (or the saved configuration) to a running domain",
    modifies: true,
    min_args: 2,
};

/// Where in the file the entry an error is about was written.
fn position(e: &Error, cfg: &UsbConfig) -> Option<Pos> {
    match e {
        Error::ConfigApply {
            setting: "usbctrl",
            index,
            ..
        } => cfg.ctrls.get(*index)?.pos,
        Error::ConfigApply { index, .. }
        | Error::UndefinedController { index, .. }
        | Error::UnsupportedDeviceType { index, .. } => cfg.devs.get(*index)?.pos,
        _ => None,
    }
}

fn summary(a: &Applied) -> String {
    let mut s = String::new();
    for c in &a.created_ctrls {
        s.push_str(&format!("created controller {c}\n"));
    }
    for (c, p, busid) in &a.attached {
        s.push_str(&format!("attached {busid} at controller {c} port {p}\n"));
    }
    if !a.present_ctrls.is_empty() || !a.present_devs.is_empty() {
        s.push_str(&format!(
            "already present: {} controller(s), {} device(s)\n",
            a.present_ctrls.len(),
            a.present_devs.len()
        ));
    }
    s
}

/// Run the command.
pub fn run(ctx: &Context, args: &[OsString]) -> anyhow::Result<ExitCode> {
    // `--saved` is an operand here, not an option.
    if args.len() != 2 {
        eprintln!("{}", xl_args::help_text(&CMD));
        return Ok(ExitCode::from(2));
    }
    let what = args[1].as_os_str();
    let Ok(dom_arg) = crate::args::utf8(&args[..1]).map(|mut v| v.remove(0)) else {
        return Ok(ExitCode::FAILURE);
    };
    let shown = Path::new(what).display().to_string();
    // Parse the file before touching the host, so a bad file changes nothing.
    let cfg = if what == OsStr::new("--saved") {
        None
    } else {
        Some(load_usb_config(what)?)
    };
    let xs = xl_args::open_xenstore(ctx)?;
    let dom = match xl_args::domain(&xs, &dom_arg) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let env = OpEnv {
        timeouts: xl_args::timeouts(),
        ..OpEnv::new(&xs, &ctx.paths)
    };
    let result = match &cfg {
        Some(cfg) => config_apply(&env, &dom, cfg),
        None => config_apply_saved(&env, &dom),
    };
    match result {
        Ok(a) => {
            out(&summary(&a));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => match cfg.as_ref().and_then(|c| position(&e, c)) {
            Some(p) => Err(anyhow!(e).context(format!("{shown}:{}:{}", p.line, p.col))),
            None => Err(anyhow!(e)),
        },
    }
}
