//! `vusb usb-recover`: give back to their original drivers the devices
//! that `/libxl/usbback` remembers but no domain holds (left half-handed to
//! usbback by a killed process or a failed rollback). A vusb extension.
//! Prints one line per remembered device; exit 1 when any restore failed.

use std::process::ExitCode;

use anyhow::bail;
use vusb_core::ops::usb_recover::{Outcome, usb_recover};

use crate::context::Context;
use crate::output;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    if let Some(a) = args.first() {
        bail!("unknown argument {a:?} (usage: usb-recover)");
    }
    let xs = super::xl_args::open_xenstore(ctx)?;
    let report = usb_recover(&xs, &ctx.paths)?;
    let mut text = String::new();
    let mut failed = false;
    for r in &report {
        let line = match &r.outcome {
            Outcome::Restored(list) if list.is_empty() => {
                format!("{}: no longer on the host; driver memory removed", r.busid)
            }
            Outcome::Restored(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|i| {
                        format!(
                            "{} -> {}",
                            i.interface,
                            i.driver.as_deref().unwrap_or("(unbound)")
                        )
                    })
                    .collect();
                format!("{}: restored {}", r.busid, parts.join(", "))
            }
            Outcome::Assigned { domid } => {
                format!("{}: assigned to domain {domid}; left alone", r.busid)
            }
            Outcome::AttachRolledBack { domid, ctrl, port } => {
                format!(
                    "{}: interrupted attach to domain {domid} (controller {ctrl} port {port}) rolled back",
                    r.busid
                )
            }
            Outcome::DetachCompleted { domid, ctrl, port } => {
                format!(
                    "{}: interrupted detach from domain {domid} (controller {ctrl} port {port}) completed",
                    r.busid
                )
            }
            Outcome::Busy { holder } => {
                format!("{}: busy (held by {holder}); left alone", r.busid)
            }
            Outcome::ControllerRolledBack { domid } => {
                format!(
                    "{} of domain {domid}: interrupted creation rolled back",
                    r.busid
                )
            }
            Outcome::ControllerCompleted { domid } => {
                format!(
                    "{} of domain {domid}: interrupted creation completed (in use)",
                    r.busid
                )
            }
            Outcome::ControllerRemoved { domid } => {
                format!(
                    "{} of domain {domid}: interrupted removal completed",
                    r.busid
                )
            }
            Outcome::EmulatedRemoved { domid, step } => {
                let done = if *step == "attach" {
                    "rolled back"
                } else {
                    "completed"
                };
                format!(
                    "{} of domain {domid}: interrupted {step} {done} (removed from QEMU)",
                    r.busid
                )
            }
            Outcome::Skipped(why) => format!("{}: skipped: {why}", r.busid),
            Outcome::InPortTable { path } => {
                format!("{}: in use by a controller ({path}); left alone", r.busid)
            }
            Outcome::Failed(why) => {
                failed = true;
                format!("{}: restoring failed: {why}", r.busid)
            }
        };
        text.push_str(&line);
        text.push('\n');
    }
    if report.is_empty() {
        text.push_str("nothing to recover\n");
    }
    output::out(&text);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
