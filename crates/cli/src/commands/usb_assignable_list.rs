//! `vusb usb-assignable-list [--all] [--json]`: the host USB devices that
//! may be given to a guest (a vusb extension; xl has none). The table has
//! busid, bus.addr, physical port, vendor:product and product name; `--all` adds the
//! other devices with their reason; `--json` prints the array documented in
//! `docs/cli-json.md`. Without a reachable xenstore the listing still works:
//! nothing is known to be assigned, and a warning says why.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use vusb_core::ops::usb_assignable_list::{Entry, EntryJson, usb_assignable_list};

use crate::context::Context;
use crate::output;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let (mut all, mut json) = (false, false);
    for a in args {
        match a.as_str() {
            "--all" | "-a" => all = true,
            "--json" => json = true,
            other => {
                bail!("unknown argument {other:?} (usage: usb-assignable-list [--all] [--json])")
            }
        }
    }
    let xs = match xenstore_connect() {
        Ok(xs) => Some(xs),
        Err(e) => {
            eprintln!("vusb: warning: cannot tell which devices are assigned to domains: {e:#}");
            None
        }
    };
    let entries = usb_assignable_list(&ctx.paths, xs.as_deref())?;
    let shown: Vec<&Entry> = entries
        .iter()
        .filter(|e| all || e.reason.is_none())
        .collect();
    if json {
        let list: Vec<EntryJson> = shown.iter().map(|e| EntryJson::from(*e)).collect();
        let mut text = serde_json::to_string_pretty(&list)?;
        text.push('\n');
        output::out(&text);
    } else {
        output::out(&table(&shown, all));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(entries: &[&Entry], all: bool) -> String {
    let mut rows = vec![[
        "BusID".to_owned(),
        "Bus.Addr".to_owned(),
        "Physical port".to_owned(),
        "Vendor:Product".to_owned(),
        "Product".to_owned(),
        if all {
            "Status".to_owned()
        } else {
            String::new()
        },
    ]];
    for e in entries {
        let d = &e.device;
        let name = match (&d.manufacturer, &d.product) {
            (Some(m), Some(p)) => format!("{m} {p}"),
            (None, Some(p)) => p.clone(),
            (Some(m), None) => m.clone(),
            (None, None) => "-".to_owned(),
        };
        let status = if all {
            e.reason.clone().unwrap_or_else(|| "assignable".to_owned())
        } else {
            String::new()
        };
        rows.push([
            d.busid.to_string(),
            format!("{:03}.{:03}", d.busnum, d.devnum),
            d.physical_port.clone(),
            d.vid_pid(),
            name,
            status,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(line, "{:<w$}  ", r[c], w = *w);
        }
        line.push_str(&r[5]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A connection to xenstore, chosen the way libxenstore does.
pub(crate) fn xenstore_connect() -> anyhow::Result<Box<dyn vusb_xenstore::Xenstore>> {
    let client = vusb_xenstore::client::Client::open()
        .map_err(|e| anyhow::Error::new(crate::explain::NoXenstore(e)))?;
    Ok(Box::new(client))
}
