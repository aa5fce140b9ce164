//! `usb-rule-explain`: which host devices a rule matches and why, which
//! it does not and why not, and what the daemon does about it now.

use serde::Serialize;
use vusb_host::UsbDevice;
use vusb_xenstore::{DomId, TxId, Xenstore};

use super::{
    Result, Rule, RuleError, RunningDomain, is_subtree, matches, reasons, running_domains,
};
use crate::{HostPaths, assign};

/// One host device seen through a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceVerdict {
    /// sysfs name.
    pub busid: String,
    /// `vvvv:pppp`.
    pub vid_pid: String,
    /// iSerial, when the device has one.
    pub serial: Option<String>,
    /// The product string.
    pub product: Option<String>,
    /// Whether the rule matches it.
    pub matches: bool,
    /// Field by field, why (not).
    pub reasons: Vec<String>,
    /// The domain it is assigned to now (vusb's record), if any.
    pub assigned_to: Option<DomId>,
}

/// The whole explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The rule.
    pub rule: Rule,
    /// Its domain, when running.
    pub domain: Option<RunningDomain>,
    /// Every non-hub host device.
    pub devices: Vec<DeviceVerdict>,
    /// What the daemon does with the rule now, in one sentence.
    pub verdict: String,
}

fn verdict(
    rule: &Rule,
    dom: Option<&RunningDomain>,
    hits: &[&DeviceVerdict],
    subtree: bool,
) -> String {
    match (hits, dom) {
        ([], _) => "no present device matches; the daemon attaches one when it appears".to_owned(),
        ([_, _, ..], _) if !subtree => format!(
            "matches {} devices at once: the daemon does not act on it until only one is present",
            hits.len()
        ),
        (_, None) => format!(
            "domain {} is not running; the device goes to it when it starts",
            rule.domain
        ),
        ([d, ..], Some(dom)) => match d.assigned_to {
            Some(x) if x == dom.domid => {
                format!("{} is attached to {} (domid {x})", d.busid, rule.domain)
            }
            Some(x) => format!(
                "{} is held by domid {x}; it stays there (no flapping) until released",
                d.busid
            ),
            None => format!(
                "{} is free: the daemon attaches it to {} (domid {})",
                d.busid, rule.domain, dom.domid
            ),
        },
    }
}

/// Explain `rule` against the host now.
pub fn explain<X: Xenstore + ?Sized>(
    xs: &X,
    paths: &HostPaths,
    rule: &Rule,
) -> Result<Explanation> {
    let spec = rule.spec()?;
    let devices: Vec<UsbDevice> =
        vusb_host::discover(&paths.sysfs_root).map_err(|e| RuleError::Host(Box::new(e)))?;
    let records = assign::list(xs, TxId::NONE).unwrap_or_else(|e| {
        log::warn!("cannot read vusb's assignment records: {e}");
        Vec::new()
    });
    let dom = running_domains(xs)?
        .into_iter()
        .find(|d| d.is(&rule.domain));
    let verdicts: Vec<DeviceVerdict> = devices
        .iter()
        .filter(|d| !d.busid.is_root_hub())
        .map(|d| DeviceVerdict {
            busid: d.busid.to_string(),
            vid_pid: d.vid_pid(),
            serial: d.serial.clone(),
            product: d.product.clone(),
            matches: matches(&spec, d),
            reasons: reasons(&spec, d),
            assigned_to: records
                .iter()
                .find(|r| r.busid == d.busid.as_str())
                .map(|r| r.domid),
        })
        .collect();
    let hits: Vec<&DeviceVerdict> = verdicts.iter().filter(|v| v.matches).collect();
    let verdict = verdict(rule, dom.as_ref(), &hits, is_subtree(&spec));
    Ok(Explanation {
        rule: rule.clone(),
        domain: dom,
        devices: verdicts,
        verdict,
    })
}

/// The text form.
pub fn format_text(e: &Explanation) -> String {
    let r = &e.rule;
    let mut out = format!(
        "rule {}: {} -> {} (mode={}, priority={})\n",
        r.id,
        r.selector,
        r.domain,
        r.mode.as_str(),
        r.priority
    );
    match &e.domain {
        Some(d) => out.push_str(&format!("domain: running, domid {}\n", d.domid)),
        None => out.push_str("domain: not running\n"),
    }
    for d in &e.devices {
        let tag = if d.matches { "matches" } else { "no match" };
        let held = d
            .assigned_to
            .map(|x| format!(" [assigned to domid {x}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<8} {} {:<9} {}{}\n",
            d.busid,
            d.vid_pid,
            tag,
            d.reasons.join("; "),
            held
        ));
    }
    out.push_str(&format!("verdict: {}\n", e.verdict));
    out
}
