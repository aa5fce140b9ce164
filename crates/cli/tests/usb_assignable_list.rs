//! End-to-end tests of `vusb usb-assignable-list`: the unmodified binary
//! under `umockdev-run` on recorded sysfs trees (`crates/host/tests/data`),
//! and through `--sysfs-root` on trees built by `vusb_testsupport::sysfs`.
//!
//! umockdev-run missing: the recording tests fail under `CI=true`, and are
//! skipped with a printed reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VUSB: &str = env!("CARGO_BIN_EXE_vusb");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../host/tests/data")
        .join(name)
}

fn have_umockdev() -> bool {
    let ok = Command::new("umockdev-run")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("umockdev-run is required in CI (apt-get install umockdev)");
        }
        eprintln!("skipping: umockdev-run is not installed");
    }
    ok
}

/// A proc root with the given mountinfo lines and swaps.
fn proc_root(mounts: &[&str], swaps: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("self")).unwrap();
    let mut mi = String::new();
    for (i, m) in mounts.iter().enumerate() {
        mi.push_str(&format!(
            "{} 1 {m} rw,relatime shared:1 - vfat rw\n",
            100 + i
        ));
    }
    std::fs::write(dir.path().join("self/mountinfo"), mi).unwrap();
    let mut sw = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    for s in swaps {
        sw.push_str(&format!(
            "{s}                               partition\t8388604\t\t0\t\t-2\n"
        ));
    }
    std::fs::write(dir.path().join("swaps"), sw).unwrap();
    dir
}

fn run_recorded(recording: &str, proc: &Path, args: &[&str]) -> Output {
    let out = Command::new("umockdev-run")
        .arg("-d")
        .arg(data(recording))
        .arg("--")
        .arg(VUSB)
        .arg("usb-assignable-list")
        .args(args)
        .env("VUSB_PROC_ROOT", proc)
        .env("XENSTORED_PATH", proc.join("no-xenstored-here"))
        .env_remove("VUSB_SYSFS_ROOT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{recording}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const KEYS: [&str; 17] = [
    "busid",
    "hostbus",
    "hostaddr",
    "vendor_id",
    "product_id",
    "manufacturer",
    "product",
    "serial",
    "speed_mbps",
    "usb_version",
    "device_class",
    "port_path",
    "physical_port",
    "assignable",
    "reason",
    "assigned_to",
    "interfaces",
];

fn is_hex(v: &Value, digits: usize) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == digits && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Every entry follows the documented schema exactly.
fn check_schema(list: &[Value]) {
    for e in list {
        let obj = e.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS, "{e}");
        assert!(
            e["busid"].is_string() && e["hostbus"].is_u64() && e["hostaddr"].is_u64(),
            "{e}"
        );
        assert!(
            is_hex(&e["vendor_id"], 4)
                && is_hex(&e["product_id"], 4)
                && is_hex(&e["device_class"], 2),
            "{e}"
        );
        for k in ["manufacturer", "product", "serial", "reason"] {
            assert!(e[k].is_null() || e[k].is_string(), "{k}: {e}");
        }
        assert!(
            e["speed_mbps"].is_number() || e["speed_mbps"].is_null(),
            "{e}"
        );
        assert!(
            e["usb_version"]
                .as_str()
                .is_some_and(|v| v.len() == 4 && v.as_bytes()[1] == b'.'),
            "{e}"
        );
        assert!(
            e["port_path"].is_string()
                && e["physical_port"].is_string()
                && e["assignable"].is_boolean(),
            "{e}"
        );
        assert_eq!(
            e["assignable"].as_bool().unwrap(),
            e["reason"].is_null(),
            "{e}"
        );
        assert!(
            e["assigned_to"].is_null() || e["assigned_to"].is_u64(),
            "{e}"
        );
        for i in e["interfaces"].as_array().unwrap() {
            let ikeys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(ikeys, ["name", "class", "driver"], "{i}");
            assert!(is_hex(&i["class"], 2), "{i}");
            assert!(i["driver"].is_null() || i["driver"].is_string(), "{i}");
            assert!(i["name"].as_str().unwrap().contains(':'), "{i}");
        }
    }
}

fn json_all(recording: &str, proc: &Path) -> Vec<Value> {
    let out = run_recorded(recording, proc, &["--all", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap().clone();
    check_schema(&list);
    list
}

fn entry<'a>(list: &'a [Value], busid: &str) -> &'a Value {
    list.iter()
        .find(|e| e["busid"] == busid)
        .unwrap_or_else(|| panic!("{busid} missing"))
}

fn busids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|e| e["busid"].as_str().unwrap()).collect()
}

fn reason<'a>(list: &'a [Value], busid: &str) -> Option<&'a str> {
    entry(list, busid)["reason"].as_str()
}

#[test]
fn nested_hubs() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let list = json_all("nested-hubs.umockdev", proc.path());
    assert_eq!(
        busids(&list),
        ["usb2", "2-1", "2-1.1", "2-1.1.4", "2-1.1.4.2", "2-1.8"]
    );
    assert_eq!(
        reason(&list, "usb2"),
        Some("root hub of the host controller")
    );
    for hub in ["2-1", "2-1.1", "2-1.1.4"] {
        assert_eq!(
            reason(&list, hub),
            Some("USB hub (device class 09)"),
            "{hub}"
        );
    }
    let mouse = entry(&list, "2-1.1.4.2");
    assert_eq!(mouse["assignable"], true);
    assert_eq!(
        (mouse["hostbus"].as_u64(), mouse["hostaddr"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(mouse["speed_mbps"].as_f64(), Some(1.5));
    assert_eq!(mouse["port_path"], "0000:00:1d.0-1.1.4.2");
    assert_eq!(mouse["interfaces"][0]["driver"], "usbhid");
    let fp = entry(&list, "2-1.8");
    assert_eq!(fp["interfaces"][0]["driver"], Value::Null);
    assert_eq!(fp["interfaces"][0]["class"], "ff");
    assert_eq!(fp["usb_version"], "1.10");
    assert_eq!(fp["speed_mbps"], 12);
}

#[test]
fn composite_hid() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let list = json_all("composite-hid.umockdev", proc.path());
    assert_eq!(busids(&list), ["usb1", "1-3", "1-4", "1-5", "1-7", "usb2"]);
    let rx = entry(&list, "1-3");
    assert_eq!(rx["assignable"], true);
    let names: Vec<&str> = rx["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1-3:1.0", "1-3:1.1", "1-3:1.2"]);
    let headset = entry(&list, "1-4");
    let drivers: Vec<&str> = headset["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["driver"].as_str().unwrap())
        .collect();
    assert_eq!(
        drivers,
        ["snd-usb-audio", "snd-usb-audio", "snd-usb-audio", "usbhid"]
    );
    assert_eq!(headset["serial"], "A0F6B9F2E1C2");
    assert_eq!(entry(&list, "1-5")["interfaces"][2]["driver"], Value::Null);
    let bt = entry(&list, "1-7");
    assert_eq!(
        (bt["manufacturer"].clone(), bt["device_class"].clone()),
        (Value::Null, Value::from("e0"))
    );
    assert_eq!(entry(&list, "usb2")["usb_version"], "3.10");
    assert_eq!(entry(&list, "usb2")["speed_mbps"], 5000);
}

#[test]
fn keyboard_with_hub_and_non_ascii() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let list = json_all("keyboard-with-hub.umockdev", proc.path());
    assert_eq!(reason(&list, "3-2"), Some("USB hub (device class 09)"));
    assert_eq!(reason(&list, "3-2.2"), None);
    // libxl would accept this one: only an interface says hub.
    assert_eq!(
        reason(&list, "3-3"),
        Some("USB hub (an interface of class 09)")
    );
    assert_eq!(entry(&list, "3-3")["device_class"], "00");
    let odd = entry(&list, "3-4");
    assert_eq!(odd["manufacturer"], "Société Générale d'Électronique");
    assert_eq!(odd["product"], "Clé de sécurité ✓ 安全");
    assert_eq!(odd["serial"], "ÄÖÜ-0042");
}

#[test]
fn mass_storage_in_use() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&["8:17 / /media/user/CRUZER"], &["/dev/sdc2"]);
    let list = json_all("mass-storage-mounted.umockdev", proc.path());
    assert_eq!(
        reason(&list, "1-1.2"),
        Some("in use by the host: /dev/sdb1 is mounted on /media/user/CRUZER")
    );
    assert_eq!(
        reason(&list, "1-1"),
        Some(
            "hub above 1-1.2, which the host is using: /dev/sdb1 is mounted on /media/user/CRUZER"
        )
    );
    assert_eq!(
        reason(&list, "1-1.3"),
        None,
        "card reader without a mounted medium"
    );
    assert_eq!(
        reason(&list, "1-4"),
        Some("in use by the host: /dev/sdd1 is held by dm-0")
    );
    assert_eq!(
        reason(&list, "2-3"),
        Some("in use by the host: /dev/sdc2 is in use as swap")
    );
    assert_eq!(entry(&list, "2-3")["speed_mbps"], 10000);
    assert_eq!(entry(&list, "2-3")["usb_version"], "3.20");

    // Nothing mounted: the flash drive becomes assignable; the hub stays a hub.
    let idle = proc_root(&[], &[]);
    let list = json_all("mass-storage-mounted.umockdev", idle.path());
    assert_eq!(reason(&list, "1-1.2"), None);
    assert_eq!(reason(&list, "1-1"), Some("USB hub (device class 09)"));
    assert_eq!(reason(&list, "2-3"), None);
}

#[test]
fn usb3_companions() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let list = json_all("usb3-companions.umockdev", proc.path());
    assert_eq!(
        busids(&list),
        ["usb3", "3-1", "3-1.3", "3-4", "usb4", "4-1", "4-1.2", "4-2"]
    );
    // The USB3 hub shows on both buses, at the same physical port path.
    assert_eq!(entry(&list, "3-1")["port_path"], "0000:00:14.0-1");
    assert_eq!(entry(&list, "4-1")["port_path"], "0000:00:14.0-1");
    assert_eq!(reason(&list, "4-1"), Some("USB hub (device class 09)"));
    assert_eq!(entry(&list, "4-1.2")["speed_mbps"], 5000);
    assert_eq!(entry(&list, "4-2")["hostbus"], 4);
    assert_eq!(reason(&list, "3-1.3"), None);
}

#[test]
fn identical_serials_and_odd_records() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let out = run_recorded(
        "identical-serials.umockdev",
        proc.path(),
        &["--all", "--json"],
    );
    let list: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    check_schema(&list);
    // The broken device (no idVendor) is skipped with a warning, not fatal.
    assert_eq!(busids(&list), ["usb1", "1-1", "1-2", "1-3", "1-4", "1-5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping USB device 1-6") && stderr.contains("idVendor"),
        "{stderr}"
    );
    // Same vendor, product and serial: told apart by busid and port path.
    assert_eq!(entry(&list, "1-1")["serial"], entry(&list, "1-2")["serial"]);
    assert_ne!(
        entry(&list, "1-1")["port_path"],
        entry(&list, "1-2")["port_path"]
    );
    // Values recorded without newlines parse the same.
    let ch = entry(&list, "1-3");
    assert_eq!(
        (
            ch["vendor_id"].as_str(),
            ch["usb_version"].as_str(),
            ch["serial"].is_null()
        ),
        (Some("1a86"), Some("1.10"), true)
    );
    assert_eq!(ch["interfaces"][0]["class"], "ff");
    // busnum says 2, the path says bus 1: the path wins.
    assert_eq!(entry(&list, "1-5")["hostbus"], 1);
}

#[test]
fn table_lists_only_assignable_without_all_and_warns_without_xenstore() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let out = run_recorded("nested-hubs.umockdev", proc.path(), &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("BusID")
            && lines[0].contains("Bus.Addr")
            && lines[0].contains("Vendor:Product")
    );
    assert!(
        lines[1].starts_with("2-1.1.4.2")
            && lines[1].contains("002.005")
            && lines[1].contains("046d:c077")
    );
    assert!(lines[1].contains("Logitech USB Optical Mouse"));
    assert!(lines[2].starts_with("2-1.8"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot tell which devices are assigned"),
        "{stderr}"
    );
}

#[test]
fn fixture_tree_through_sysfs_root() {
    let t = vusb_testsupport::sysfs::typical_host().unwrap();
    let out = Command::new(VUSB)
        .arg("--sysfs-root")
        .arg(t.root())
        .args(["usb-assignable-list", "--all", "--json"])
        .env("VUSB_PROC_ROOT", t.proc_root())
        .env("XENSTORED_PATH", t.base().join("none"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    check_schema(&list);
    assert_eq!(
        busids(&list),
        ["usb1", "1-1", "1-2", "1-2.1", "usb2", "2-1"]
    );
    assert_eq!(
        reason(&list, "1-2.1"),
        Some("in use by the host: /dev/sdb1 is mounted on /media/user/CRUZER")
    );
    assert_eq!(reason(&list, "1-1"), None);
}

#[test]
fn bad_arguments_exit_1() {
    let out = Command::new(VUSB)
        .args(["usb-assignable-list", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn assigned_devices_name_their_domain() {
    use vusb_core::assign::{self, Assignment};
    use vusb_xenstore::TxId;
    let t = vusb_testsupport::sysfs::typical_host().unwrap();
    // 1-2.1's interface handed to usbback by another toolstack (xl).
    t.driver("usbback").unwrap();
    let intf = t.devpath("1-2.1").unwrap() + "/1-2.1:1.0";
    t.link(&format!("{intf}/driver"), "bus/usb/drivers/usbback")
        .unwrap();
    let store = vusb_xenstore::mem::MemStore::new();
    let record = Assignment {
        busid: vusb_host::BusId::parse("1-1").unwrap(),
        domid: 3,
        ctrl: 0,
        port: 1,
        ctrl_type: vusb_core::layout::UsbCtrlType::Pv,
        hostbus: 1,
        hostaddr: 2,
        qom_id: None,
        step: vusb_core::journal::Step::Done,
        identity: None,
    };
    assign::update(&store.connect(0), TxId::NONE, &record).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let _server = vusb_xenstore::server::Server::new(store)
        .spawn(&socket)
        .unwrap();
    let out = Command::new(VUSB)
        .arg("--sysfs-root")
        .arg(t.root())
        .args(["usb-assignable-list", "--all", "--json"])
        .env("VUSB_PROC_ROOT", proc_root(&[], &[]).path())
        .env("XENSTORED_PATH", &socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    check_schema(&list);
    let kbd = entry(&list, "1-1");
    assert_eq!(
        (kbd["assigned_to"].as_u64(), kbd["reason"].as_str()),
        (Some(3), Some("assigned to domain 3"))
    );
    assert_eq!(
        reason(&list, "1-2.1"),
        Some("its interfaces are bound to usbback (assigned by another toolstack)")
    );
    assert_eq!(entry(&list, "2-1")["assigned_to"], Value::Null);
}

fn physical_ports_by(list: &[Value], key: &str) -> std::collections::BTreeMap<String, String> {
    list.iter()
        .filter(|e| e[key].is_string())
        .map(|e| {
            (
                e[key].as_str().unwrap().to_owned(),
                e["physical_port"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Recordings `peers-iso` (buses 1/2) and `peers-iso-renumbered` (the same
/// host, buses 4/3): Intel-like peers (SS1-HS3, SS2-HS4, SS3-HS1, SS4
/// alone) and a USB3 hub in connector 4. Every device keeps its physical
/// port while its busid changes; both hub halves share one; the SS-only
/// port is marked `s4`.
#[test]
fn physical_ports_follow_peers_and_survive_renumbering() {
    if !have_umockdev() {
        return;
    }
    let proc = proc_root(&[], &[]);
    let run = |rec: &str| -> Vec<Value> {
        let out = run_recorded(rec, proc.path(), &["--all", "--json"]);
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        check_schema(&list);
        list
    };
    let a = run("peers-iso.umockdev");
    let b = run("peers-iso-renumbered.umockdev");
    let (pa, pb) = (
        physical_ports_by(&a, "serial"),
        physical_ports_by(&b, "serial"),
    );
    let want = [
        ("CAM1", "0000:00:14.0/4.1"),
        ("SSD1", "0000:00:14.0/4.3"),
        ("STICK1", "0000:00:14.0/3"),
        ("SSONLY1", "0000:00:14.0/s4"),
    ];
    for (serial, port) in want {
        assert_eq!(pa.get(serial).map(String::as_str), Some(port), "{serial}");
        assert_eq!(pb.get(serial).map(String::as_str), Some(port), "{serial}");
    }
    let busid_of = |l: &[Value], serial: &str| {
        l.iter().find(|e| e["serial"] == serial).unwrap()["busid"].clone()
    };
    assert_eq!(busid_of(&a, "SSD1"), "2-2.3");
    assert_eq!(busid_of(&b, "SSD1"), "3-2.3");
    let by_busid = physical_ports_by(&a, "busid");
    assert_eq!(by_busid["1-4"], "0000:00:14.0/4");
    assert_eq!(by_busid["2-2"], "0000:00:14.0/4");
    assert_eq!(by_busid["1-2"], "0000:00:14.0/2", "the audio adapter");
    // The older recording: the USB3 hub's halves and their devices.
    let c = run("usb3-companions.umockdev");
    let by_busid = physical_ports_by(&c, "busid");
    assert_eq!(by_busid["3-1"], by_busid["4-1"]);
    assert_eq!(by_busid["4-1.2"], "0000:00:14.0/1.2");
    assert_eq!(by_busid["3-1.3"], "0000:00:14.0/1.3");
}
