//! Why a command was refused, and what to do: the `vusb:` lines printed
//! under xl's message (which stays xl's, byte for byte). The facts come
//! from the core's typed errors; the CLI only reads a little more (the
//! host's devices for "closest" suggestions, a domain's name) on this
//! error path, never on success.

use vusb_core::Error;
use vusb_core::error::Unassignable;
use vusb_host::{Refusal, UsbDevice};
use vusb_xlcfg::UsbDevSpec;

use crate::context::Context;

/// The xenstore could not be reached (no Xen, or not dom0).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach xenstore")]
pub struct NoXenstore(#[source] pub vusb_xenstore::Error);

/// The hints for an error that reached `main` (anyhow chain): no
/// xenstore, or a core error somewhere in the chain (config-apply).
pub fn anyhow_hints(ctx: &Context, e: &anyhow::Error) -> Vec<String> {
    if let Some(core) = e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        return lines(ctx, core, None);
    }
    if e.downcast_ref::<NoXenstore>().is_some() {
        return vec![
            "not a Xen dom0? try `vusb sim start DIR` (a simulated host; eval the export lines it prints), or `vusb --qmp PATH ...` for a plain QEMU/KVM VM".to_owned(),
        ];
    }
    Vec::new()
}

/// The `vusb:` lines explaining `e`. `spec` is the device the user named
/// (usbdev commands), for "closest device" suggestions.
pub fn lines(ctx: &Context, e: &Error, spec: Option<&UsbDevSpec>) -> Vec<String> {
    match e {
        Error::NotAssignable { busid, why } => unassignable(ctx, busid.as_deref(), why, spec),
        Error::AlreadyAssigned { busid, domid } => vec![format!(
            "{busid} is attached to domain {}; detach it there first (`vusb usbdev-detach {domid} busid={busid}`)",
            domain_label(*domid)
        )],
        Error::BoundToUsbback { busid } => vec![format!(
            "{busid}'s interfaces are bound to usbback, but vusb has no record of it: attached by xl (`xl usbdev-detach`), or left behind by a crash (`vusb usb-recover` gives it back to the host)"
        )],
        Error::MissingNode { path } => match controller_of(path) {
            Some((domid, devid)) => vec![no_controller(domid, &devid)],
            None => Vec::new(),
        },
        Error::UnknownController { domid, devid } => vec![no_controller(*domid, devid)],
        Error::UnknownDevice { ctrl, port } => vec![format!(
            "nothing is attached at controller {ctrl} port {port}; `vusb usb-list DOMAIN` shows the ports, or detach by the device: `usbdev-detach DOMAIN busid=...`"
        )],
        Error::DeviceNotAttached { domid, .. } => vec![format!(
            "`vusb usb-list {domid}` shows what domain {domid} has"
        )],
        Error::PortInUse { devid, port } => vec![format!(
            "port {port} of controller {devid} is taken; name a free port, or leave port= out to take the first free one"
        )],
        Error::NoFreePort { devid } => vec![format!(
            "controller {devid} has no free port; leave controller= out (vusb then creates a controller), or add one with `vusb usbctrl-attach`"
        )],
        Error::PortWithoutController => {
            vec!["port= needs controller= (usb-list shows the controllers)".to_owned()]
        }
        Error::DeviceModelNotRunning { domid } => vec![format!(
            "domain {domid} has no device model (QEMU) running: use type=pv (dom0's usbback) for it"
        )],
        Error::QusbNotSupported { domid } => vec![format!(
            "the device model of domain {domid} does not offer qusb: use type=pv, or type=devicemodel for an HVM guest"
        )],
        Error::BackendTimeout { path, .. } => vec![format!(
            "the backend {path} did not answer: is dom0's usbback loaded (`modprobe xen-usbback`), and is the guest's usbfront running? VUSB_BACKEND_TIMEOUT_MS waits longer"
        )],
        Error::ConfigApply { source, .. } | Error::Remove { source, .. } => {
            lines(ctx, source, spec)
        }
        Error::Host(h) => lookup(ctx, h, spec),
        _ => Vec::new(),
    }
}

fn no_controller(domid: impl std::fmt::Display, devid: &str) -> String {
    format!(
        "domain {domid} has no USB controller {devid}; `vusb usb-list {domid}` shows its controllers, `vusb usbctrl-attach {domid}` adds one"
    )
}

/// `/libxl/<domid>/device/vusb/<devid>` → (domid, devid).
fn controller_of(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/libxl/")?;
    let (domid, rest) = rest.split_once('/')?;
    let devid = rest.strip_prefix("device/vusb/")?;
    (!devid.contains('/')).then(|| (domid.to_owned(), devid.to_owned()))
}

/// `2 (guest2)` when the name can be read, else `2`.
fn domain_label(domid: u32) -> String {
    use vusb_xenstore::{TxId, XenstoreExt};
    let name = vusb_xenstore::client::Client::open().ok().and_then(|xs| {
        xs.read_opt(TxId::NONE, &format!("/local/domain/{domid}/name"))
            .ok()
            .flatten()
    });
    match name {
        Some(n) => format!("{domid} ({n})"),
        None => domid.to_string(),
    }
}

fn unassignable(
    ctx: &Context,
    busid: Option<&str>,
    why: &Unassignable,
    spec: Option<&UsbDevSpec>,
) -> Vec<String> {
    let dev = busid.unwrap_or("the device");
    match why {
        Unassignable::Lookup(e) => lookup(ctx, e, spec),
        Unassignable::Refused(r) => vec![refusal(ctx, dev, r)],
        Unassignable::IncompleteSelector { given, missing } => vec![format!(
            "{given} needs {missing} too, e.g. vendor=046d product=c52b (`vusb usb-assignable-list` shows them)"
        )],
        Unassignable::ConflictingSelectors { given } => vec![format!(
            "the device is named in {} ways at once ({}); give one of them",
            given.len(),
            given.join(", ")
        )],
        _ => Vec::new(),
    }
}

fn refusal(ctx: &Context, dev: &str, r: &Refusal) -> String {
    match r {
        Refusal::InUse { usage } => format!(
            "{dev} is in use by the host: {usage}; stop using it first (umount, swapoff), or add --force to attach it anyway"
        ),
        Refusal::Hub { .. } => {
            let below = devices(ctx)
                .into_iter()
                .filter(|d| d.parents.iter().any(|p| p.as_str() == dev) && !d.is_hub())
                .map(|d| format!("busid={}", d.busid))
                .collect::<Vec<_>>();
            let hint = if below.is_empty() {
                String::new()
            } else {
                format!(
                    "; attach the devices below it instead: {}",
                    below.join(", ")
                )
            };
            format!(
                "{dev} is a USB hub ({r}): hubs are never passed through, not even with --force{hint}"
            )
        }
        Refusal::HubAboveInUse { device, usage } => format!(
            "{dev} is a USB hub, and the host is using {device} below it ({usage}): hubs are never passed through"
        ),
        Refusal::RootHub => {
            format!("{dev} is the root hub of a host controller: attach a device below it")
        }
    }
}

fn devices(ctx: &Context) -> Vec<UsbDevice> {
    vusb_host::discover(&ctx.paths.sysfs_root).unwrap_or_default()
}

fn describe(d: &UsbDevice) -> String {
    let name = [d.manufacturer.as_deref(), d.product.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "busid={} (hostbus={} hostaddr={}, {}{}{})",
        d.busid,
        d.busnum,
        d.devnum,
        d.vid_pid(),
        if name.is_empty() { "" } else { " " },
        name
    )
}

fn lookup(ctx: &Context, e: &vusb_host::Error, spec: Option<&UsbDevSpec>) -> Vec<String> {
    match e {
        vusb_host::Error::DeviceNotFound { what } => {
            let all = devices(ctx);
            let mut near: Vec<(usize, &UsbDevice)> = all
                .iter()
                .filter(|d| !d.busid.is_root_hub())
                .map(|d| (distance(d, spec), d))
                .collect();
            near.sort_by_key(|(score, d)| (*score, d.busid.to_string()));
            let closest: Vec<String> = near.iter().take(3).map(|(_, d)| describe(d)).collect();
            let mut v = vec![format!("no host USB device with {what}")];
            if closest.is_empty() {
                v.push("the host has no USB devices (is --sysfs-root right?)".to_owned());
            } else {
                v.push(format!(
                    "closest: {}; `vusb usb-assignable-list` lists them all",
                    closest.join(", ")
                ));
            }
            v
        }
        vusb_host::Error::AmbiguousDevice { what, matches } => {
            let all = devices(ctx);
            let found: Vec<&UsbDevice> = all
                .iter()
                .filter(|d| matches.iter().any(|m| m == d.busid.as_str()))
                .collect();
            let serials: Vec<Option<&str>> = found.iter().map(|d| d.serial.as_deref()).collect();
            let distinct = serials.iter().all(Option::is_some)
                && serials
                    .iter()
                    .enumerate()
                    .all(|(i, s)| !serials[..i].contains(s));
            let listed: Vec<String> = found
                .iter()
                .map(|d| match (&d.serial, distinct) {
                    (Some(s), true) => format!("serial={s} or busid={}", d.busid),
                    _ => format!("busid={}", d.busid),
                })
                .collect();
            vec![format!(
                "{what} matches {} devices: {}; name one of them so",
                matches.len(),
                if listed.is_empty() {
                    matches.join(", ")
                } else {
                    listed.join(", ")
                }
            )]
        }
        other => vec![vusb_host::discover::error_chain(other)],
    }
}

/// How far `d` is from what the user asked for (smaller is closer).
fn distance(d: &UsbDevice, spec: Option<&UsbDevSpec>) -> usize {
    let Some(s) = spec else { return 0 };
    let mut score = 0;
    if let Some(b) = &s.busid {
        score += strsim::levenshtein(b, d.busid.as_str());
    }
    if let Some(p) = &s.portpath {
        score += strsim::levenshtein(p, &d.port_path).min(strsim::levenshtein(p, d.busid.as_str()));
    }
    if let Some(v) = s.vendor {
        score += if v == d.vendor_id { 0 } else { 4 };
    }
    if let Some(p) = s.product {
        score += if p == d.product_id { 0 } else { 2 };
    }
    if let Some(b) = s.hostbus {
        score += if b == d.busnum { 0 } else { 4 };
    }
    if let Some(a) = s.hostaddr {
        score += (i64::from(a) - i64::from(d.devnum)).unsigned_abs().min(4) as usize;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_paths_are_recognised() {
        assert_eq!(
            controller_of("/libxl/3/device/vusb/7"),
            Some(("3".to_owned(), "7".to_owned()))
        );
        assert_eq!(controller_of("/libxl/3/device/vusb/7/x"), None);
        assert_eq!(controller_of("/local/domain/3"), None);
    }
}
