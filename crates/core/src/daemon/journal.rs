//! The daemon's journal, `STATE_DIR/daemon.json` (this module owns the
//! schema, version 1): where each rule's device was last placed (so a
//! re-plugged device goes back to the same controller and port), and the
//! attach in flight (written before the attach starts, cleared after), so
//! a daemon killed midway knows at restart what it was doing. Written
//! atomically; only the daemon writes it (one daemon per host: the
//! control socket refuses a second one).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::HostPaths;
use crate::statefile;

/// Version of the journal written by this module.
pub const JOURNAL_VERSION: u32 = 1;

/// Where a rule's device was last attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The domain (name or uuid as the rule says).
    pub domain: String,
    /// The host device then.
    pub busid: String,
    /// `vvvv:pppp` then.
    pub vid_pid: String,
    /// Controller devid.
    pub ctrl: u32,
    /// Port.
    pub port: u32,
    /// The device's physical port then (`vusb_host`'s identity of the
    /// connector), for firmware-update follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_port: Option<String>,
}

/// An attach the daemon started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// The rule.
    pub rule: u32,
    /// The device.
    pub busid: String,
    /// The domain's domid.
    pub domid: u32,
}

/// The journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// Last placement per rule id.
    #[serde(default)]
    pub placements: BTreeMap<u32, Placement>,
    /// The attach in progress, if any.
    #[serde(default)]
    pub in_flight: Option<InFlight>,
    /// Devices attached by subtree rules (`physport=...*`): busid → rule.
    #[serde(default)]
    pub subtree: BTreeMap<String, u32>,
    /// Where each device attached by a subtree rule was last placed, by
    /// its physical port (its busid when it has none), so that a device
    /// re-plugged below the port goes back to the same controller port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subtree_placements: BTreeMap<String, Placement>,
    /// Firmware-update follow windows open now: physical port → the
    /// rule's device that left it. Kept here so that a daemon restarted
    /// during a firmware update still follows it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub departed: BTreeMap<String, Departure>,
}

/// A `follow=` rule's device that left its physical port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// The rule.
    pub rule: u32,
    /// `vvvv:pppp` of the device that left.
    pub vid_pid: String,
    /// When it left: milliseconds since the Unix epoch (wall clock, so
    /// that it means the same to a restarted daemon).
    pub at_ms: u64,
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            version: JOURNAL_VERSION,
            placements: BTreeMap::new(),
            in_flight: None,
            subtree: BTreeMap::new(),
            subtree_placements: BTreeMap::new(),
            departed: BTreeMap::new(),
        }
    }
}

/// `STATE_DIR/daemon.json`.
pub fn file_path(paths: &HostPaths) -> PathBuf {
    paths.state_dir.join("daemon.json")
}

/// Load the journal; a missing, unreadable or foreign-version file gives
/// an empty journal (with a warning): it is a cache of placements, and the
/// xenstore records remain the truth.
pub fn load(paths: &HostPaths) -> Journal {
    let path = file_path(paths);
    let text = match statefile::read_opt(&path) {
        Ok(Some(t)) => t,
        Ok(None) => return Journal::default(),
        Err(e) => {
            log::warn!("{}: {e}; starting with an empty journal", path.display());
            return Journal::default();
        }
    };
    match serde_json::from_str::<Journal>(&text) {
        Ok(j) if j.version == JOURNAL_VERSION => j,
        Ok(j) => {
            log::warn!(
                "{}: version {} unknown; starting with an empty journal",
                path.display(),
                j.version
            );
            Journal::default()
        }
        Err(e) => {
            log::warn!("{}: {e}; starting with an empty journal", path.display());
            Journal::default()
        }
    }
}

/// Write the journal atomically.
pub fn store(paths: &HostPaths, j: &Journal) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(j).map_err(std::io::Error::other)?;
    text.push('\n');
    statefile::write_atomic(&file_path(paths), text.as_bytes())
}
