//! The xl-style commands for a plain QEMU/KVM VM (`vusb --qmp PATH ...`):
//! argument parsing (the spec grammar of `vusb_xlcfg`, shared with config
//! files and the Xen commands) and printing; the work is in
//! `vusb_core::qemu_vm`. The first argument is a free label naming the VM.
//!
//! Input that alone decides (bad version/ports/model, bad keys) is refused
//! before the socket is opened. `VUSB_UNPLUG_TIMEOUT_MS` overrides how long
//! removals wait for QEMU (devices 2 s, controllers 5 s).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use vusb_core::devicemodel::{DmConn, QMP_TIMEOUT};
use vusb_core::qemu_vm::{self, CONTROLLER_UNPLUG_TIMEOUT, DEVICE_UNPLUG_TIMEOUT};

use crate::context::Context;
use crate::output;

/// Run `command` (an xl-style command name) against the VM behind `qmp`.
pub fn run(ctx: &Context, qmp: &Path, command: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        output::out(&super::help::command(command));
        return Ok(ExitCode::SUCCESS);
    }
    // `usb-list --json` (anywhere, as for Xen guests).
    let json = command == "usb-list" && args.iter().any(|a| a == "--json");
    let args: Vec<String> = args
        .iter()
        .filter(|a| !(json && *a == "--json"))
        .cloned()
        .collect();
    let args = args.as_slice();
    let min = match command {
        "usbctrl-detach" => 2,
        "usbdev-attach" => 2,
        "usbdev-detach" => 2,
        _ => 1,
    };
    if args.len() < min {
        eprintln!(
            "'vusb {command}' requires at least {min} argument{}: a label naming the VM first.",
            if min > 1 { "s" } else { "" }
        );
        return Ok(ExitCode::from(2));
    }
    let (label, rest) = (&args[0], &args[1..]);
    log::debug!("{command} on plain VM {label:?} via {}", qmp.display());
    match command {
        "usbctrl-attach" => {
            let spec = vusb_xlcfg::parse_usbctrl_args(rest)?;
            let model = qemu_vm::spec::controller(&spec)?;
            let devid = qemu_vm::usbctrl_attach(&mut connect(ctx, qmp)?, &model)?;
            log::info!(
                "{label}: controller {devid} ({}, {} ports)",
                model.driver,
                model.ports
            );
        }
        "usbctrl-detach" => {
            let devid = number(&rest[0]).with_context(|| format!("Unknown device {}.", rest[0]))?;
            let timeout = unplug_timeout(CONTROLLER_UNPLUG_TIMEOUT);
            qemu_vm::usbctrl_detach(&mut connect(ctx, qmp)?, devid, timeout)?;
        }
        "usbdev-attach" => {
            let spec = vusb_xlcfg::parse_usbdev_args(rest)?;
            let (ctrl, port, device) = qemu_vm::spec::device(&spec)?;
            let placed = qemu_vm::usbdev_attach(&mut connect(ctx, qmp)?, ctrl, port, &device)?;
            log::info!(
                "{label}: {} on controller {} port {}",
                placed.id,
                placed.ctrl,
                placed.port
            );
        }
        "usbdev-detach" if rest.first().is_some_and(|a| a.contains('=')) => {
            // vusb extension: name the device as at attach (busid=, vendor=...).
            let spec = vusb_xlcfg::parse_usbdev_args(rest)?;
            let (_, _, device) = qemu_vm::spec::device(&spec)?;
            let timeout = unplug_timeout(DEVICE_UNPLUG_TIMEOUT);
            qemu_vm::usbdev_detach_device(&mut connect(ctx, qmp)?, &device, timeout)?;
        }
        "usbdev-detach" => {
            if rest.len() != 2 {
                bail!("Invalid arguments.");
            }
            let bad = || format!("Unknown device at controller {} port {}.", rest[0], rest[1]);
            let ctrl = number(&rest[0]).with_context(bad)?;
            let port = number(&rest[1]).with_context(bad)?;
            let timeout = unplug_timeout(DEVICE_UNPLUG_TIMEOUT);
            qemu_vm::usbdev_detach(&mut connect(ctx, qmp)?, ctrl, port, timeout)?;
        }
        "usb-list" => {
            if !rest.is_empty() {
                eprintln!("Invalid arguments.");
                return Ok(ExitCode::from(255));
            }
            if json {
                let mut v = qemu_vm::usb_list_json(&mut connect(ctx, qmp)?)?;
                v["vm"] = serde_json::json!(label);
                v["qmp"] = serde_json::json!(qmp.to_string_lossy());
                let mut text = serde_json::to_string_pretty(&v)?;
                text.push('\n');
                output::out(&text);
            } else {
                output::out(&qemu_vm::usb_list(&mut connect(ctx, qmp)?)?);
            }
        }
        other => bail!("{other} does not work with --qmp"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Connect to the VM; in a dry run, commands that change it are recorded
/// in the plan instead of sent.
fn connect(ctx: &Context, qmp: &Path) -> anyhow::Result<DmConn> {
    let mut conn = DmConn::connect(qmp, QMP_TIMEOUT)?;
    conn.set_plan(ctx.paths.dry_run.clone());
    Ok(conn)
}

fn number(s: &str) -> anyhow::Result<u32> {
    s.parse::<u32>()
        .with_context(|| format!("{s:?} is not a number"))
}

fn unplug_timeout(default: Duration) -> Duration {
    std::env::var("VUSB_UNPLUG_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(default)
}
