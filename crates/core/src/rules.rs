//! Assignment rules: "this host device belongs to that domain", kept in
//! vusb's state directory and applied by `vusb daemon` whenever the device
//! or the domain appears. This module owns the schema.
//!
//! ```text
//! STATE_DIR/rules.json       {"version": 1, "next_id": 3, "rules": [
//!                              {"id": 1, "domain": "guest1",
//!                               "selector": "vendor=0781,product=5567,serial=4C53",
//!                               "mode": "auto", "priority": 0}, ...]}
//! STATE_DIR/rules.json.lock  flock held while the file is edited
//! ```
//!
//! - **Versioned**: a file of another `version` is refused, never guessed.
//! - **Atomic and locked**: every edit takes the lock, reads, changes and
//!   replaces the file (temporary file + `rename`), so concurrent
//!   `usb-rule-add`s never lose a rule and a crash leaves the old or the
//!   new file.
//! - **Domains by name or uuid, never by domid**: a domid is given anew at
//!   every start, so a rule naming one would follow whatever domain gets
//!   the number next. An all-digit domain is refused.
//! - **Selectors are the usbdev grammar** shared with `usbdev-attach` and
//!   config files (`vusb_xlcfg::parse_usbdev_item`), limited to identities
//!   that survive a re-plug: `busid=`, `vendor=`/`product=`[`/serial=`],
//!   `portpath=` (and whatever `vusb_xlcfg` adds, such as `physport=`).
//!   `hostbus=`/`hostaddr=` (a new address at every plug), `controller=`,
//!   `port=` and `type=` are refused. Matching is `vusb_host`'s own
//!   ([`matches`]), the same as `usbdev-attach` uses.
//! - **No twins**: a rule that matches two present devices at once is
//!   refused when added ([`add`]); the daemon also refuses to act on a rule
//!   that matches two devices at once later (see `docs/daemon.md`).
//!
//! A guest's xl config file can carry its rules as `vusb_rules = [ "...",
//! ... ]` (xl ignores keys it does not know); `usb-rule-add --config FILE`
//! installs them for the config's `name`, replacing the rules installed
//! from that file before.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vusb_host::UsbDevice;
use vusb_xenstore::{DomId, TxId, Xenstore, XenstoreExt};
use vusb_xlcfg::{DevKind, UsbDevSpec};

use crate::HostPaths;
use crate::statefile;

/// Version of the rules file written by this module.
pub const RULES_VERSION: u32 = 1;
/// The rules file's name under the state directory.
pub const RULES_FILE: &str = "rules.json";

/// Errors of rule handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// Reading, writing or locking the rules file.
    #[error("rules file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The rules file cannot be understood.
    #[error("rules file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A domain given as a domid.
    #[error(
        "{arg}: a rule names its domain by name or uuid, never by domid (a domid is new at every start); use the name from `xl list` or the domain's uuid"
    )]
    DomidGiven {
        /// What the user typed.
        arg: String,
    },
    /// An empty or malformed domain name.
    #[error("{arg:?} is not a domain name or uuid")]
    BadDomain {
        /// What the user typed.
        arg: String,
    },
    /// The selector does not parse.
    #[error("bad selector {text:?}")]
    Selector {
        /// The selector text.
        text: String,
        /// The parser's error.
        #[source]
        source: vusb_xlcfg::Error,
    },
    /// The selector parses but is not usable in a rule.
    #[error("selector {text:?}: {reason}")]
    Unusable {
        /// The selector text.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// A `mode=` or `priority=` value is wrong.
    #[error("{key}={value}: expected {expected}")]
    BadOption {
        /// `mode` or `priority`.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The selector matches several present devices at once.
    #[error(
        "selector {text:?} matches {} devices at once ({}): add serial= or a port (portpath=, busid=) so it names one device",
        busids.len(), busids.join(", ")
    )]
    Ambiguous {
        /// The selector text.
        text: String,
        /// The devices it matches now.
        busids: Vec<String>,
    },
    /// The same domain and selector are in a rule already.
    #[error("rule {id} already gives {selector:?} to {domain}")]
    Duplicate {
        /// The existing rule.
        id: u32,
        /// Its domain.
        domain: String,
        /// Its selector.
        selector: String,
    },
    /// No rule has this id.
    #[error("no rule with id {id}")]
    NoSuchRule {
        /// The id asked for.
        id: u32,
    },
    /// Reading the host's USB devices failed.
    #[error("listing the host's USB devices")]
    Host(#[source] Box<vusb_host::Error>),
    /// A xenstore request failed.
    #[error("xenstore")]
    Xenstore(#[from] vusb_xenstore::Error),
}

/// Result of rule handling.
pub type Result<T> = std::result::Result<T, RuleError>;

/// What the daemon does with a rule when its domain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Attach the device when both are there; nothing said when missing.
    #[default]
    Auto,
    /// As `auto`, and a domain starting without the device is reported
    /// loudly (warning, status error).
    Required,
}

impl Mode {
    /// `auto` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Required => "required",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id (never reused).
    pub id: u32,
    /// The domain's name or uuid.
    pub domain: String,
    /// The selector in the usbdev grammar (`vendor=0781,product=5567`).
    pub selector: String,
    /// `auto` or `required`.
    #[serde(default)]
    pub mode: Mode,
    /// Higher wins when two running domains want one device.
    #[serde(default)]
    pub priority: i32,
    /// Firmware-update follow window in seconds (`follow=N`): a device of
    /// another vendor:product appearing on the physical port the rule's
    /// device just left, within this window, goes to the same domain and
    /// nowhere else. `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<u32>,
    /// The config file the rule came from (`usb-rule-add --config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Rule {
    /// The parsed selector.
    pub fn spec(&self) -> Result<UsbDevSpec> {
        parse_selector(&self.selector)
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// [`RULES_VERSION`].
    pub version: u32,
    /// The id the next rule gets.
    pub next_id: u32,
    /// The rules, by id.
    pub rules: Vec<Rule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            version: RULES_VERSION,
            next_id: 1,
            rules: Vec::new(),
        }
    }
}

/// `STATE_DIR/rules.json`.
pub fn file_path(paths: &HostPaths) -> PathBuf {
    paths.state_dir.join(RULES_FILE)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuleError + '_ {
    move |source| RuleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The rules (none when the file does not exist).
pub fn load(paths: &HostPaths) -> Result<RuleSet> {
    let path = file_path(paths);
    let planned = paths.plan().and_then(|p| p.planned_file(&path));
    let text = match planned {
        Some(content) => content.map(|c| String::from_utf8_lossy(&c).into_owned()),
        None => statefile::read_opt(&path).map_err(io_err(&path))?,
    };
    let Some(text) = text else {
        return Ok(RuleSet::default());
    };
    decode(&path, &text)
}

fn decode(path: &Path, text: &str) -> Result<RuleSet> {
    let malformed = |reason: String| RuleError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let set: RuleSet = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    if set.version != RULES_VERSION {
        return Err(malformed(format!(
            "version {} (this vusb knows {RULES_VERSION})",
            set.version
        )));
    }
    Ok(set)
}

/// Lock the rules, let `f` change them, write them back (only when `f`
/// succeeds).
pub fn edit<T>(paths: &HostPaths, f: impl FnOnce(&mut RuleSet) -> Result<T>) -> Result<T> {
    let path = file_path(paths);
    let _lock = match paths.plan() {
        Some(_) => None,
        None => Some(statefile::lock(&path).map_err(io_err(&path))?),
    };
    let mut set = load(paths)?;
    let out = f(&mut set)?;
    let mut text = serde_json::to_string_pretty(&set).map_err(|e| RuleError::Malformed {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    crate::dryrun::write_file(paths.plan(), &path, text.as_bytes()).map_err(io_err(&path))?;
    Ok(out)
}

/// Check a domain argument: a name or uuid, never a domid.
pub fn check_domain(arg: &str) -> Result<()> {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleError::DomidGiven {
            arg: arg.to_owned(),
        });
    }
    let ok = !arg.is_empty()
        && arg.len() <= 64
        && arg
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '/');
    if !ok {
        return Err(RuleError::BadDomain {
            arg: arg.to_owned(),
        });
    }
    Ok(())
}

/// Parse and check a selector (comma-separated usbdev fields).
pub fn parse_selector(text: &str) -> Result<UsbDevSpec> {
    let spec = vusb_xlcfg::parse_usbdev_item(text).map_err(|source| RuleError::Selector {
        text: text.to_owned(),
        source,
    })?;
    let unusable = |reason| RuleError::Unusable {
        text: text.to_owned(),
        reason,
    };
    if spec.kind != DevKind::HostDev {
        return Err(unusable(
            "type= is not a rule selector (rules give host devices)",
        ));
    }
    if spec.controller.is_some() || spec.port.is_some() {
        return Err(unusable(
            "controller= and port= are chosen by the daemon (the same as last time when free)",
        ));
    }
    if spec.hostaddr.is_some() || (spec.hostbus.is_some() && spec.portpath.is_none()) {
        return Err(unusable(
            "hostbus=/hostaddr= change at every re-plug; a rule needs an identity that survives it: busid=, vendor=/product=[/serial=], portpath=",
        ));
    }
    if spec.portpath.is_some() && spec.hostbus.is_none() {
        return Err(unusable(
            "portpath= needs hostbus= (the bus its root hub is on)",
        ));
    }
    if spec.vendor.is_some() != spec.product.is_some() {
        return Err(unusable("vendor= and product= go together"));
    }
    if spec.serial.is_some() && spec.vendor.is_none() {
        return Err(unusable("serial= needs vendor= and product="));
    }
    if spec.busid.is_none()
        && spec.vendor.is_none()
        && spec.portpath.is_none()
        && spec.physport.is_none()
    {
        return Err(unusable(
            "names no device: give busid=, vendor=/product=[/serial=], hostbus=+portpath= or physport= (with-interface=/without-interface= only narrow one of these)",
        ));
    }
    crate::ops::hostdev::selector(&spec).map_err(|_| unusable("not a usable device selector"))?;
    Ok(spec)
}

/// The selector as stored: the usbdev grammar's own writing, without the
/// implied `type=hostdev`.
pub fn canonical(spec: &UsbDevSpec) -> String {
    let text = spec.to_string();
    text.strip_prefix("type=hostdev,")
        .map(str::to_owned)
        .unwrap_or(text)
}

/// Whether the rule's selector names `dev` — the same matching as
/// `usbdev-attach` (`vusb_host::lookup`). Hubs and root hubs never match.
pub fn matches(spec: &UsbDevSpec, dev: &UsbDevice) -> bool {
    if dev.is_hub() || dev.busid.is_root_hub() {
        return false;
    }
    let Ok(sel) = crate::ops::hostdev::selector(spec) else {
        return false;
    };
    let filter = crate::ops::hostdev::filter(spec);
    vusb_host::lookup::find_with(std::slice::from_ref(dev), &sel, &filter).is_ok()
}

/// Whether the selector may name several devices by design (a port
/// subtree, `physport=...*`). Such a rule is exempt from the twin check:
/// each device below the port goes to the domain.
pub fn is_subtree(spec: &UsbDevSpec) -> bool {
    spec.physport.as_ref().is_some_and(|p| p.below)
}

/// The present devices `spec` matches.
pub fn matching<'a>(spec: &UsbDevSpec, devices: &'a [UsbDevice]) -> Vec<&'a UsbDevice> {
    devices.iter().filter(|d| matches(spec, d)).collect()
}

/// Why `dev` does or does not match `spec`, field by field.
pub fn reasons(spec: &UsbDevSpec, dev: &UsbDevice) -> Vec<String> {
    let mut out = Vec::new();
    if dev.busid.is_root_hub() {
        out.push("a root hub".to_owned());
    } else if dev.is_hub() {
        out.push("a hub (never given away)".to_owned());
    }
    let cmp = |what: &str, want: String, have: String| {
        if want == have {
            format!("{what} {have} matches")
        } else {
            format!("{what} is {have}, not {want}")
        }
    };
    if let Some(b) = &spec.busid {
        out.push(cmp("busid", b.clone(), dev.busid.to_string()));
    }
    if let Some(v) = spec.vendor {
        out.push(cmp(
            "vendor",
            format!("{v:04x}"),
            format!("{:04x}", dev.vendor_id),
        ));
    }
    if let Some(p) = spec.product {
        out.push(cmp(
            "product",
            format!("{p:04x}"),
            format!("{:04x}", dev.product_id),
        ));
    }
    if let Some(s) = &spec.serial {
        let have = dev.serial.clone().unwrap_or_else(|| "(none)".to_owned());
        out.push(cmp("serial", s.clone(), have));
    }
    if let Some(p) = &spec.portpath {
        let want = match spec.hostbus {
            Some(bus) if !p.contains('-') => format!("{bus}-{p}"),
            _ => p.clone(),
        };
        let have = if want.contains(':') {
            dev.port_path.clone()
        } else {
            dev.busid.to_string()
        };
        out.push(cmp("port path", want, have));
    }
    if let Some(p) = &spec.physport {
        let sel = vusb_host::Selector::PhysPort {
            port: p.port.clone(),
            below: p.below,
        };
        let hit = vusb_host::lookup::find(std::slice::from_ref(dev), &sel).is_ok();
        out.push(format!(
            "physical port {} {} {p}",
            dev.physical_port,
            if hit { "is in" } else { "is not in" }
        ));
    }
    if spec.with_interface.is_some() || spec.without_interface.is_some() {
        match crate::ops::hostdev::filter(spec).check(dev) {
            Ok(()) => out.push("interfaces pass the filter".to_owned()),
            Err(r) => out.push(format!("interfaces: {r}")),
        }
    }
    out
}

/// A running domain as rules name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningDomain {
    /// Its domid now.
    pub domid: DomId,
    /// `/local/domain/<domid>/name`.
    pub name: Option<String>,
    /// From `/local/domain/<domid>/vm`.
    pub uuid: Option<String>,
}

impl RunningDomain {
    /// Whether a rule's domain (name or uuid) is this one.
    pub fn is(&self, domain: &str) -> bool {
        self.name.as_deref() == Some(domain)
            || self
                .uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(domain))
    }
}

/// Every domain but dom0, with its name and uuid.
pub fn running_domains<X: Xenstore + ?Sized>(xs: &X) -> Result<Vec<RunningDomain>> {
    let mut out = Vec::new();
    for entry in xs.directory_opt(TxId::NONE, "/local/domain")? {
        let Ok(domid) = entry.parse::<DomId>() else {
            continue;
        };
        if domid == 0 {
            continue;
        }
        let name = xs.read_opt(TxId::NONE, &format!("/local/domain/{domid}/name"))?;
        let uuid = crate::domain::uuid(xs, domid).ok().flatten();
        out.push(RunningDomain { domid, name, uuid });
    }
    Ok(out)
}

/// Options of `usb-rule-add` besides the selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRule {
    /// The domain (name or uuid).
    pub domain: String,
    /// Selector fields, each `KEY=VALUE` (joined by commas).
    pub fields: Vec<String>,
    /// `mode=`.
    pub mode: Mode,
    /// `priority=`.
    pub priority: i32,
    /// `follow=SECONDS`.
    pub follow: Option<u32>,
    /// The config file it comes from.
    pub source: Option<String>,
}

impl NewRule {
    /// From command arguments: `mode=` and `priority=` are taken out, the
    /// rest are selector fields (a field may itself hold several, comma
    /// separated).
    pub fn from_args<S: AsRef<str>>(domain: &str, args: &[S]) -> Result<NewRule> {
        let mut r = NewRule {
            domain: domain.to_owned(),
            ..NewRule::default()
        };
        for a in args {
            for field in a
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
            {
                r.take(field)?;
            }
        }
        Ok(r)
    }

    fn take(&mut self, field: &str) -> Result<()> {
        if let Some(v) = field.strip_prefix("mode=") {
            self.mode = match v {
                "auto" => Mode::Auto,
                "required" => Mode::Required,
                _ => {
                    return Err(RuleError::BadOption {
                        key: "mode",
                        value: v.to_owned(),
                        expected: "auto or required",
                    });
                }
            };
        } else if let Some(v) = field.strip_prefix("priority=") {
            self.priority = v
                .parse::<i32>()
                .ok()
                .filter(|p| (-1000..=1000).contains(p))
                .ok_or_else(|| RuleError::BadOption {
                    key: "priority",
                    value: v.to_owned(),
                    expected: "an integer from -1000 to 1000",
                })?;
        } else if let Some(v) = field.strip_prefix("follow=") {
            self.follow = Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|s| (1..=600).contains(s))
                    .ok_or_else(|| RuleError::BadOption {
                        key: "follow",
                        value: v.to_owned(),
                        expected: "seconds from 1 to 600",
                    })?,
            );
        } else {
            self.fields.push(field.to_owned());
        }
        Ok(())
    }
}

/// Check `new` against the host's present devices and add it. Returns the
/// rule as stored (its id assigned). Nothing is written on error.
pub fn add(paths: &HostPaths, new: &NewRule) -> Result<Rule> {
    check_domain(&new.domain)?;
    let text = new.fields.join(",");
    let spec = parse_selector(&text)?;
    let canonical = canonical(&spec);
    let devices =
        vusb_host::discover(&paths.sysfs_root).map_err(|e| RuleError::Host(Box::new(e)))?;
    let found = matching(&spec, &devices);
    if found.len() > 1 && !is_subtree(&spec) {
        return Err(RuleError::Ambiguous {
            text: canonical,
            busids: found.iter().map(|d| d.busid.to_string()).collect(),
        });
    }
    edit(paths, |set| {
        if let Some(r) = set
            .rules
            .iter()
            .find(|r| r.domain == new.domain && r.selector == canonical)
        {
            return Err(RuleError::Duplicate {
                id: r.id,
                domain: r.domain.clone(),
                selector: r.selector.clone(),
            });
        }
        let rule = Rule {
            id: set.next_id,
            domain: new.domain.clone(),
            selector: canonical.clone(),
            mode: new.mode,
            priority: new.priority,
            follow: new.follow,
            source: new.source.clone(),
        };
        set.next_id += 1;
        set.rules.push(rule.clone());
        Ok(rule)
    })
}

/// Remove rule `id`; returns it.
pub fn remove(paths: &HostPaths, id: u32) -> Result<Rule> {
    edit(paths, |set| {
        let i = set
            .rules
            .iter()
            .position(|r| r.id == id)
            .ok_or(RuleError::NoSuchRule { id })?;
        Ok(set.rules.remove(i))
    })
}

/// One rule by id.
pub fn get(paths: &HostPaths, id: u32) -> Result<Rule> {
    load(paths)?
        .rules
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(RuleError::NoSuchRule { id })
}

/// Rules carried by a guest config: the config's `name` and its
/// `vusb_rules` list (each item a selector with optional `mode=` and
/// `priority=`). `None` when the config has no `vusb_rules`.
pub fn from_config(text: &str, file: &str) -> Result<Option<Vec<NewRule>>> {
    let bad = |reason: String| RuleError::Malformed {
        path: PathBuf::from(file),
        reason,
    };
    let cfg = vusb_xlcfg::parse(text).map_err(|e| bad(e.to_string()))?;
    let list = match cfg.get_list("vusb_rules") {
        Ok(Some((_, items))) => items,
        Ok(None) => return Ok(None),
        Err(w) => return Err(bad(w.to_string())),
    };
    let name = match cfg.get_string("name") {
        Ok(Some(n)) => n,
        _ => return Err(bad("vusb_rules needs the config's name=".into())),
    };
    let mut out = Vec::new();
    for item in list {
        let s = item
            .as_atom()
            .ok_or_else(|| bad("vusb_rules must be a list of strings".into()))?;
        let mut r = NewRule::from_args(name, &[s])?;
        r.source = Some(file.to_owned());
        out.push(r);
    }
    Ok(Some(out))
}

/// Install the rules of a config file: every rule that came from `file`
/// before is replaced. Each new rule is checked as [`add`] checks it; on
/// the first refusal nothing is changed.
pub fn install_config(paths: &HostPaths, file: &str, rules: &[NewRule]) -> Result<Vec<Rule>> {
    let devices =
        vusb_host::discover(&paths.sysfs_root).map_err(|e| RuleError::Host(Box::new(e)))?;
    let mut checked = Vec::new();
    for new in rules {
        check_domain(&new.domain)?;
        let text = new.fields.join(",");
        let spec = parse_selector(&text)?;
        let found = matching(&spec, &devices);
        if found.len() > 1 && !is_subtree(&spec) {
            return Err(RuleError::Ambiguous {
                text: canonical(&spec),
                busids: found.iter().map(|d| d.busid.to_string()).collect(),
            });
        }
        checked.push((new, canonical(&spec)));
    }
    edit(paths, |set| {
        set.rules.retain(|r| r.source.as_deref() != Some(file));
        let mut out = Vec::new();
        for (new, canonical) in checked {
            let rule = Rule {
                id: set.next_id,
                domain: new.domain.clone(),
                selector: canonical,
                mode: new.mode,
                priority: new.priority,
                follow: new.follow,
                source: Some(file.to_owned()),
            };
            set.next_id += 1;
            set.rules.push(rule.clone());
            out.push(rule);
        }
        Ok(out)
    })
}

#[path = "rules_explain.rs"]
mod explain;
pub use explain::{DeviceVerdict, Explanation, explain, format_text};

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
