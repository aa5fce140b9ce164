//! End-to-end tests of `usb-rule-add`, `usb-rule-list`, `usb-rule-remove`
//! and `usb-rule-explain` with the built binary on the simulated host
//! (vusb's in-memory xenstored on a socket, the fixture sysfs): CRUD,
//! refusals (domid, unstable selector, twins) with nothing stored, JSON,
//! explanations, rules carried by a guest config file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod daemon_support;

use daemon_support::Bed;

fn fails(bed: &Bed, args: &[&str], code: i32, needle: &str) {
    let o = bed.vusb(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn rule_crud_and_refusals() {
    let bed = Bed::sim();
    assert_eq!(
        bed.ok(&["usb-rule-add", "guest1", "vendor=0781", "product=5567"]),
        "1\n"
    );
    assert_eq!(
        bed.ok(&[
            "usb-rule-add",
            "00000000-0000-0000-0000-000000000002",
            "busid=1-2,mode=required,priority=3"
        ]),
        "2\n"
    );
    fails(
        &bed,
        &["usb-rule-add", "1", "busid=1-1"],
        1,
        "never by domid",
    );
    fails(
        &bed,
        &["usb-rule-add", "guest1", "hostbus=1", "hostaddr=2"],
        1,
        "re-plug",
    );
    fails(
        &bed,
        &["usb-rule-add", "guest1", "busid=1-1", "mode=sometimes"],
        1,
        "mode=sometimes",
    );
    fails(&bed, &["usb-rule-add", "guest1"], 2, "usage");
    fails(&bed, &["usb-rule-remove", "x"], 2, "usage");
    fails(&bed, &["usb-rule-remove", "9"], 1, "no rule with id 9");
    let text = bed.ok(&["usb-rule-list"]);
    assert_eq!(
        text,
        "Id   Domain               Mode     Priority  Selector\n\
         1    guest1               auto            0  vendor=0781,product=5567\n\
         2    00000000-0000-0000-0000-000000000002 required        3  busid=1-2\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&bed.ok(&["usb-rule-list", "--json"])).unwrap();
    assert_eq!(json[1]["mode"], "required");
    assert_eq!(json[1]["priority"], 3);
    assert_eq!(json.as_array().unwrap().len(), 2);
    bed.ok(&["usb-rule-remove", "1"]);
    let json: serde_json::Value =
        serde_json::from_str(&bed.ok(&["usb-rule-list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["id"], 2);
}

#[test]
fn twins_are_refused() {
    let bed = Bed::sim();
    let devs = bed.paths().sysfs_root.join("bus/usb/devices");
    std::fs::write(devs.join("1-4/idProduct"), "0002\n").unwrap();
    fails(
        &bed,
        &["usb-rule-add", "guest1", "vendor=1234,product=0002"],
        1,
        "matches 2 devices at once (1-3, 1-4)",
    );
    assert_eq!(bed.ok(&["usb-rule-list", "--json"]).trim(), "[]");
}

#[test]
fn explain_says_what_matches_and_why() {
    let bed = Bed::sim();
    bed.ok(&["usb-rule-add", "guest1", "vendor=046d,product=c52b"]);
    bed.ok(&["usb-rule-add", "guest9", "busid=1-3"]);
    let text = bed.ok(&["usb-rule-explain", "1"]);
    assert!(text.contains("domain: running, domid 1"), "{text}");
    assert!(
        text.contains("1-2      046d:c52b matches   vendor 046d matches; product c52b matches"),
        "{text}"
    );
    assert!(
        text.contains(
            "1-1      0781:5567 no match  vendor is 0781, not 046d; product is 5567, not c52b"
        ),
        "{text}"
    );
    assert!(
        text.contains("verdict: 1-2 is free: the daemon attaches it to guest1 (domid 1)"),
        "{text}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&bed.ok(&["usb-rule-explain", "2", "--json"])).unwrap();
    assert_eq!(j["domain"], serde_json::Value::Null);
    assert!(
        j["verdict"].as_str().unwrap().contains("not running"),
        "{j}"
    );
    let hits: Vec<&str> = j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["matches"] == true)
        .map(|d| d["busid"].as_str().unwrap())
        .collect();
    assert_eq!(hits, ["1-3"]);
    // Once attached, explain says so.
    bed.ok(&["usbctrl-attach", "guest1", "type=pv"]);
    bed.ok(&["usbdev-attach", "guest1", "busid=1-2"]);
    let text = bed.ok(&["usb-rule-explain", "1"]);
    assert!(text.contains("[assigned to domid 1]"), "{text}");
    assert!(
        text.contains("verdict: 1-2 is attached to guest1 (domid 1)"),
        "{text}"
    );
    fails(&bed, &["usb-rule-explain", "7"], 1, "no rule with id 7");
}

#[test]
fn rules_from_a_guest_config_file() {
    let bed = Bed::sim();
    let cfg = bed.root().join("guest1.cfg");
    std::fs::write(
        &cfg,
        "name = \"guest1\"\nmemory = 256\nvusb_rules = [ \"vendor=0781,product=5567,mode=required\", \"busid=1-2\" ]\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    assert_eq!(bed.ok(&["usb-rule-add", "--config", cfg]), "1\n2\n");
    assert_eq!(bed.ok(&["usb-rule-add", "--config", cfg]), "3\n4\n");
    let json: serde_json::Value =
        serde_json::from_str(&bed.ok(&["usb-rule-list", "--json"])).unwrap();
    assert_eq!(
        json.as_array().unwrap().len(),
        2,
        "re-installing replaces: {json}"
    );
    assert_eq!(json[0]["source"], cfg);
    assert_eq!(json[0]["mode"], "required");
    // xl's own reading of the file ignores the key (config-show lists USB only).
    bed.ok(&["config-show", cfg]);
}
