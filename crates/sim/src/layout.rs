//! The xenstore layout of a simulated host's domains: dom0 as
//! `xen-init-dom0` leaves it, and guests as `libxl__domain_make` followed
//! by `libxl__build_post` leave them (same nodes, values, permissions and
//! creation order as the xl-peer fake host, checked against its golden
//! `00-initial-store.txt`), plus one connected vif per guest so that its
//! `device/` directories are not empty (libxl's path cleanup removes
//! emptied parents).
//!
//! This is an approximation written from libxl's behaviour, not the output
//! of a real `xl create`: no hypervisor exists here.

use vusb_xenstore::{DomId, Perm, PermKind, TxId, Xenstore, XenstoreExt};

use super::Error;

/// What kind of guest to lay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    /// PV guest without a device model (usbctrl type `pv`).
    Pv,
    /// PV guest with a QEMU serving backends, among them `qusb`
    /// (usbctrl type `qusb`).
    PvQemu,
    /// HVM guest with a device model (usbctrl type `devicemodel`).
    Hvm,
}

impl DomainKind {
    /// The name used in domain specs (`pv`, `pvqemu`, `hvm`).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainKind::Pv => "pv",
            DomainKind::PvQemu => "pvqemu",
            DomainKind::Hvm => "hvm",
        }
    }

    /// Parse a spec name.
    pub fn parse(s: &str) -> Option<DomainKind> {
        match s {
            "pv" => Some(DomainKind::Pv),
            "pvqemu" => Some(DomainKind::PvQemu),
            "hvm" => Some(DomainKind::Hvm),
            _ => None,
        }
    }

    /// True for HVM guests.
    pub fn is_hvm(self) -> bool {
        self == DomainKind::Hvm
    }
}

/// One guest to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    /// Its domid (≥ 1).
    pub domid: DomId,
    /// Its kind.
    pub kind: DomainKind,
    /// The pid written as `image/device-model-pid` (kinds with a device
    /// model only).
    pub dm_pid: u32,
    /// Give it one connected vif.
    pub vif: bool,
}

impl GuestSpec {
    /// A guest with a vif and device-model pid 1.
    pub fn new(domid: DomId, kind: DomainKind) -> GuestSpec {
        GuestSpec {
            domid,
            kind,
            dm_pid: 1,
            vif: true,
        }
    }

    /// Its name, `guest<domid>`.
    pub fn name(&self) -> String {
        format!("guest{}", self.domid)
    }
}

/// The fixed uuid of a simulated domain: `00000000-0000-4000-8000-<domid
/// in 12 hex digits>`, all zeros for dom0 (as the xl shim reports them).
pub fn uuid_of(domid: DomId) -> String {
    if domid == 0 {
        "00000000-0000-0000-0000-000000000000".to_owned()
    } else {
        format!("00000000-0000-4000-8000-{domid:012x}")
    }
}

/// Parse a domain list `1:pv,2:pvqemu,3:hvm`.
pub fn parse_domains(spec: &str) -> Option<Vec<GuestSpec>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (d, k) = item.split_once(':')?;
            Some(GuestSpec::new(d.parse().ok()?, DomainKind::parse(k)?))
        })
        .collect()
}

fn perms(list: &[(PermKind, DomId)]) -> Vec<Perm> {
    list.iter().map(|&(k, d)| Perm::new(k, d)).collect()
}

/// Writes nodes inside one transaction.
struct Writer<'a, X: ?Sized> {
    xs: &'a X,
    tx: TxId,
}

impl<X: Xenstore + ?Sized> Writer<'_, X> {
    fn w(&self, path: &str, value: &str) -> Result<(), Error> {
        Ok(self.xs.write_str(self.tx, path, value)?)
    }
    fn node(&self, path: &str, perms: &[Perm], value: &str) -> Result<(), Error> {
        self.w(path, value)?;
        Ok(self.xs.set_perms(self.tx, path, perms)?)
    }
}

fn in_transaction<X, F>(xs: &X, body: F) -> Result<(), Error>
where
    X: Xenstore + ?Sized,
    F: Fn(&Writer<'_, X>) -> Result<(), Error>,
{
    vusb_xenstore::transaction(xs, vusb_xenstore::txn::DEFAULT_ATTEMPTS, |tx| {
        body(&Writer { xs, tx })
    })
}

/// Dom0's nodes as `xen-init-dom0` writes them: `domid`, `name`
/// (`Domain-0`) and the pool name, all `n0`.
pub fn write_dom0<X: Xenstore + ?Sized>(xs: &X) -> Result<(), Error> {
    let n0 = perms(&[(PermKind::None, 0)]);
    in_transaction(xs, |w| {
        w.node("/local/domain/0/domid", &n0, "0")?;
        w.node("/local/domain/0/name", &n0, "Domain-0")?;
        w.node("/local/pool/0/name", &n0, "Pool-0")
    })
}

/// A guest's nodes (one transaction), in libxl's order and permissions.
pub fn write_guest<X: Xenstore + ?Sized>(xs: &X, g: &GuestSpec) -> Result<(), Error> {
    in_transaction(xs, |w| guest_nodes(w, g))
}

fn guest_nodes<X: Xenstore + ?Sized>(w: &Writer<'_, X>, g: &GuestSpec) -> Result<(), Error> {
    let domid = g.domid;
    let d = format!("/local/domain/{domid}");
    let u = uuid_of(domid);
    let vm = format!("/vm/{u}");
    let lx = format!("/libxl/{domid}");
    let ro = perms(&[(PermKind::None, 0), (PermKind::Read, domid)]);
    let rw = perms(&[(PermKind::None, domid)]);
    let n0 = perms(&[(PermKind::None, 0)]);
    let hvm = g.kind.is_hvm();

    w.node(&d, &ro, "")?;
    w.node(&vm, &ro, "")?;
    w.node(&lx, &n0, "")?;
    w.node(&format!("{lx}/device"), &n0, "")?;
    w.w(&format!("{d}/vm"), &vm)?;
    w.node(&format!("{d}/cpu"), &ro, "")?;
    w.node(&format!("{d}/memory"), &ro, "")?;
    if hvm {
        w.node(&format!("{d}/device"), &ro, "")?;
        w.node(&format!("{d}/device/suspend/event-channel"), &rw, "")?;
    } else {
        w.node(&format!("{d}/device"), &rw, "")?;
    }
    w.node(&format!("{d}/control"), &ro, "")?;
    if hvm {
        w.node(&format!("{d}/hvmloader"), &ro, "")?;
    }
    let mut control = vec![
        "shutdown",
        "feature-poweroff",
        "feature-reboot",
        "feature-suspend",
    ];
    if hvm {
        control.extend(["feature-s3", "feature-s4"]);
    }
    control.push("sysrq");
    for c in control {
        w.node(&format!("{d}/control/{c}"), &rw, "")?;
    }
    for c in ["data", "drivers", "feature", "attr", "error"] {
        w.node(&format!("{d}/{c}"), &rw, "")?;
    }
    w.w(&format!("{vm}/uuid"), &u)?;
    w.w(&format!("{vm}/name"), &g.name())?;
    w.w(
        &format!("{d}/control/platform-feature-multiprocessor-suspend"),
        "1",
    )?;
    w.w(
        &format!("{d}/control/platform-feature-xs_reset_watches"),
        "1",
    )?;
    w.w(&format!("{lx}/type"), if hvm { "hvm" } else { "pv" })?;
    w.w(&format!("{d}/name"), &g.name())?;
    w.w(&format!("{d}/memory/static-max"), "1048576")?;
    w.w(
        &format!("{d}/memory/target"),
        if hvm { "1040384" } else { "1048576" },
    )?;
    w.w(
        &format!("{d}/memory/videoram"),
        if hvm { "8192" } else { "-1" },
    )?;
    w.w(&format!("{d}/domid"), &domid.to_string())?;
    w.w(&format!("{d}/store/port"), "1")?;
    let ring = if hvm { 0xfeffc } else { 0x12345 + domid };
    w.w(&format!("{d}/store/ring-ref"), &ring.to_string())?;
    w.w(&format!("{d}/cpu/0/availability"), "online")?;
    w.w(&format!("{vm}/start_time"), "1700000000.00")?;
    if hvm || g.kind == DomainKind::PvQemu {
        w.w(&format!("{lx}/dm-version"), "qemu_xen")?;
        w.w(
            &format!("{d}/image/device-model-pid"),
            &g.dm_pid.to_string(),
        )?;
        let dm = format!("/local/domain/0/device-model/{domid}");
        w.node(&dm, &ro, "")?;
        w.w(&format!("{dm}/state"), "running")?;
        if g.kind == DomainKind::PvQemu {
            for b in ["console", "vkbd", "qdisk", "9pfs", "qusb"] {
                w.w(&format!("{dm}/backends/{b}"), "")?;
            }
        }
    }
    if g.vif {
        vif_nodes(w, domid)?;
    }
    Ok(())
}

/// One connected vif (frontend, backend and `/libxl` nodes).
fn vif_nodes<X: Xenstore + ?Sized>(w: &Writer<'_, X>, domid: DomId) -> Result<(), Error> {
    let fe = format!("/local/domain/{domid}/device/vif/0");
    let be = format!("/local/domain/0/backend/vif/{domid}/0");
    let lx = format!("/libxl/{domid}/device/vif/0");
    let mac = format!(
        "00:16:3e:00:{:02x}:{:02x}",
        (domid >> 8) & 0xff,
        domid & 0xff
    );
    w.w(&format!("{lx}/frontend"), &fe)?;
    w.w(&format!("{lx}/backend"), &be)?;
    w.xs.mkdir(w.tx, &fe)?;
    w.xs.set_perms(
        w.tx,
        &fe,
        &perms(&[(PermKind::None, domid), (PermKind::Read, 0)]),
    )?;
    let fe_entries = [
        ("backend", be.as_str()),
        ("backend-id", "0"),
        ("handle", "0"),
        ("mac", mac.as_str()),
        ("mtu", "1500"),
        ("tx-ring-ref", "9"),
        ("rx-ring-ref", "10"),
        ("event-channel", "11"),
        ("request-rx-copy", "1"),
        ("feature-rx-notify", "1"),
        ("state", "4"),
    ];
    for (k, v) in fe_entries {
        w.w(&format!("{fe}/{k}"), v)?;
    }
    w.xs.mkdir(w.tx, &be)?;
    w.xs.set_perms(
        w.tx,
        &be,
        &perms(&[(PermKind::None, 0), (PermKind::Read, domid)]),
    )?;
    let id = domid.to_string();
    let be_entries = [
        ("frontend-id", id.as_str()),
        ("online", "1"),
        ("state", "4"),
        ("script", "/etc/xen/scripts/vif-bridge"),
        ("mac", mac.as_str()),
        ("bridge", "xenbr0"),
        ("handle", "0"),
        ("type", "vif"),
    ];
    w.w(&format!("{be}/frontend"), &fe)?;
    for (k, v) in be_entries {
        w.w(&format!("{be}/{k}"), v)?;
    }
    for (k, v) in be_entries {
        w.w(&format!("{lx}/{k}"), if k == "state" { "1" } else { v })?;
    }
    w.w(&format!("{be}/hotplug-status"), "connected")
}

/// libxl's stored domain configuration for a guest
/// (`userdata-d.<domid>.<uuid>.libxl-json`), in the shape `xl create -n`
/// prints it (before libxl's defaults are applied), with libxl's
/// trailing NUL. `kernel` is the PV kernel path recorded in it.
pub fn guest_json(g: &GuestSpec, kernel: &str, disk: &str) -> String {
    let hvm = g.kind.is_hvm();
    let ty = if hvm { "hvm" } else { "pv" };
    let empty = |indent: &str| format!("{{\n\n{indent}}}");
    let mut b = String::from(
        "    \"b_info\": {\n        \"max_vcpus\": 1,\n        \"avail_vcpus\": [\n            0\n        ],\n        \"max_memkb\": 1048576,\n        \"target_memkb\": 1048576,\n",
    );
    if hvm {
        b.push_str("        \"device_model_version\": \"qemu_xen\",\n");
    }
    b.push_str(&format!(
        "        \"sched_params\": {},\n        \"claim_mode\": \"True\",\n",
        empty("        ")
    ));
    if hvm {
        let subs: Vec<String> = ["vga", "vnc", "sdl", "spice", "rdm"]
            .iter()
            .map(|k| format!("            \"{k}\": {}", empty("            ")))
            .collect();
        b.push_str(&format!(
            "        \"type.hvm\": {{\n{}\n        }},\n",
            subs.join(",\n")
        ));
    } else {
        b.push_str(&format!(
            "        \"kernel\": {},\n        \"type.pv\": {},\n",
            json_str(kernel),
            empty("        ")
        ));
    }
    b.push_str(&format!(
        "        \"arch_arm\": {},\n        \"arch_x86\": {}\n    }},\n",
        empty("        "),
        empty("        ")
    ));
    let disks = if g.kind == DomainKind::PvQemu {
        format!(
            "    \"disks\": [\n        {{\n            \"pdev_path\": {},\n            \"vdev\": \"xvda\",\n            \"backend\": \"qdisk\",\n            \"format\": \"raw\",\n            \"readwrite\": 1\n        }}\n    ],\n",
            json_str(disk)
        )
    } else {
        String::new()
    };
    format!(
        "{{\n    \"c_info\": {{\n        \"type\": \"{ty}\",\n        \"name\": \"{}\",\n        \"uuid\": \"{}\",\n        \"run_hotplug_scripts\": \"True\"\n    }},\n{b}{disks}    \"on_reboot\": \"restart\",\n    \"on_soft_reset\": \"soft_reset\"\n}}\n\0",
        g.name(),
        uuid_of(g.domid)
    )
}

/// Dom0's stub configuration as `xen-init-dom0` stores it.
pub fn dom0_json() -> &'static str {
    "{\n    \"c_info\": {\n        \"type\": \"pv\"\n    },\n    \"b_info\": {\n        \"sched_params\": {\n\n        },\n        \"type.pv\": {\n\n        },\n        \"arch_arm\": {\n\n        },\n        \"arch_x86\": {\n\n        }\n    }\n}\n\0"
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_specs() {
        assert_eq!(uuid_of(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(uuid_of(1000), "00000000-0000-4000-8000-0000000003e8");
        let doms = parse_domains("1:pv, 2:pvqemu,3:hvm").unwrap_or_default();
        assert_eq!(doms.len(), 3);
        assert_eq!(doms[1].kind, DomainKind::PvQemu);
        assert!(parse_domains("1:pvh").is_none());
        assert!(parse_domains("x:pv").is_none());
    }

    #[test]
    fn guest_json_is_valid_json_with_trailing_nul() {
        for kind in [DomainKind::Pv, DomainKind::PvQemu, DomainKind::Hvm] {
            let j = guest_json(&GuestSpec::new(7, kind), "/k", "/d");
            assert!(j.ends_with("}\n\0"));
            let v: serde_json::Value =
                serde_json::from_str(j.trim_end_matches('\0')).unwrap_or_default();
            assert_eq!(v["c_info"]["name"], "guest7");
            assert_eq!(
                v["c_info"]["type"],
                if kind.is_hvm() { "hvm" } else { "pv" }
            );
        }
        let d: serde_json::Value =
            serde_json::from_str(dom0_json().trim_end_matches('\0')).unwrap_or_default();
        assert_eq!(d["c_info"]["type"], "pv");
    }
}
