//! `usb-list` tells the truth (issue 13): a port whose device left the
//! host is `"state": "gone"`, one whose device was re-plugged (new
//! address, back on host drivers) is `"replugged"`, in vusb's JSON; xl's
//! text form is unchanged. On the simulated host and on the real C
//! xenstored (fake host; skipped outside CI when it cannot start). No
//! daemon runs here: this is what a user sees without one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod daemon_support;

use daemon_support::Bed;

fn states(bed: &Bed, dom: &str) -> Vec<String> {
    let j: serde_json::Value = serde_json::from_str(&bed.ok(&["usb-list", "--json", dom])).unwrap();
    j["controllers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap().to_owned())
        .collect()
}

fn truth(bed: &Bed) {
    bed.ok(&["usbctrl-attach", "guest1", "type=pv", "ports=2"]);
    bed.ok(&["usbdev-attach", "guest1", "busid=1-1"]);
    assert_eq!(states(bed, "guest1"), ["attached", "empty"]);
    bed.unplug("1-1");
    assert_eq!(states(bed, "guest1"), ["gone", "empty"]);
    let text = bed.ok(&["usb-list", "guest1"]);
    assert!(
        text.ends_with("  Port 1:\n  Port 2:\n"),
        "xl's text: {text}"
    );
    let (busid, _) = bed.plug("1-1", None);
    assert_eq!(busid, "1-1");
    assert_eq!(states(bed, "guest1"), ["replugged", "empty"]);
    let text = bed.ok(&["usb-list", "guest1"]);
    assert!(
        text.ends_with("  Port 1: Bus 001 Device 006\n  Port 2:\n"),
        "xl's text: {text}"
    );
    // Detaching the stale port makes it empty; attaching again, attached.
    bed.ok(&["usbdev-detach", "guest1", "0", "1"]);
    bed.ok(&["usbdev-attach", "guest1", "busid=1-1"]);
    assert_eq!(states(bed, "guest1"), ["attached", "empty"]);
}

#[test]
fn usb_list_tells_gone_and_replugged_on_the_simulated_host() {
    truth(&Bed::sim());
}

#[test]
fn usb_list_tells_gone_and_replugged_on_the_real_xenstored() {
    let Some(bed) = Bed::real("usb_list_tells_gone_and_replugged_on_the_real_xenstored") else {
        return;
    };
    truth(&bed);
}
