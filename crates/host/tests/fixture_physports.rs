//! Component tests of the physical-port identity, port subtrees, interface
//! filters and endpoint reading, against fixture sysfs trees built by
//! `vusb_testsupport::sysfs` (real directories, relative links and `peer`
//! links laid out as the kernel does).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vusb_host::endpoints::Transfer;
use vusb_host::lookup::{Selector, find, find_with, locate_with};
use vusb_host::{Error, InterfaceFilter, InterfacePattern, UsbDevice, discover};
use vusb_testsupport::sysfs::{Descriptors, DeviceSpec, IntfSpec, SysfsTree};

const XHCI: &str = "0000:00:14.0";

fn dev<'a>(list: &'a [UsbDevice], busid: &str) -> &'a UsbDevice {
    list.iter()
        .find(|d| d.busid.as_str() == busid)
        .unwrap_or_else(|| panic!("{busid} not discovered"))
}

fn by_serial<'a>(list: &'a [UsbDevice], serial: &str) -> &'a UsbDevice {
    list.iter()
        .find(|d| d.serial.as_deref() == Some(serial))
        .unwrap_or_else(|| panic!("no device with serial {serial}"))
}

/// An xHCI laid out as Intel's are: USB2 root hub with 6 ports, USB3 root
/// hub with 4, peers not by equal numbers (SS 1 ↔ HS 3, SS 2 ↔ HS 4,
/// SS 3 ↔ HS 1), SS port 4 without USB2 half. Bus numbers are parameters
/// so that the same host can be "renumbered".
fn intel_xhci(t: &SysfsTree, hs: u32, ss: u32) {
    t.root_hub(hs, XHCI, "2.00", 6).unwrap();
    t.root_hub(ss, XHCI, "3.10", 4).unwrap();
    for (s, h) in [(1, 3), (2, 4), (3, 1)] {
        t.peer(&format!("usb{hs}"), h, &format!("usb{ss}"), s)
            .unwrap();
    }
}

fn stick(devnum: u32, serial: &str, superspeed: bool) -> DeviceSpec {
    let d = DeviceSpec::new(devnum, 0x0951, 0x1666)
        .strings("Kingston", "DataTraveler 3.0", Some(serial))
        .intf(IntfSpec::new(8, Some("usb-storage")).sub(6, 0x50));
    if superspeed {
        d.speed("5000", "3.00")
    } else {
        d
    }
}

/// An external USB3 hub: a USB2 hub on the HS root port and a USB3 hub on
/// the SS root port of one connector, their 4 ports peered by number, as
/// the kernel links them.
fn usb3_hub(t: &SysfsTree, hs_busid: &str, ss_busid: &str, devnum: u32) {
    t.device(
        hs_busid,
        &DeviceSpec::hub(devnum, 0x2109, 0x2817).strings("VIA Labs, Inc.", "USB2.0 Hub", None),
    )
    .unwrap();
    t.device(
        ss_busid,
        &DeviceSpec::hub(devnum, 0x2109, 0x0817)
            .strings("VIA Labs, Inc.", "USB3.0 Hub", None)
            .speed("5000", "3.10"),
    )
    .unwrap();
    for p in 1..=4 {
        t.peer(hs_busid, p, ss_busid, p).unwrap();
    }
}

/// The same stick in the same connector, once on the USB2 half (high
/// speed) and once on the USB3 half (SuperSpeed): one physical port, while
/// busid and port path differ.
#[test]
fn one_connector_two_halves_one_physical_port() {
    let t = SysfsTree::new().unwrap();
    intel_xhci(&t, 1, 2);
    t.device("1-3", &stick(2, "HS", false)).unwrap();
    let hs = discover(&t.root()).unwrap();
    let at_hs = dev(&hs, "1-3");
    assert_eq!(at_hs.physical_port, format!("{XHCI}/3"));
    t.unplug("1-3").unwrap();
    t.device("2-1", &stick(2, "SS", true)).unwrap();
    let ss = discover(&t.root()).unwrap();
    let at_ss = dev(&ss, "2-1");
    assert_eq!(at_ss.physical_port, at_hs.physical_port);
    assert_ne!(at_ss.port_path, at_hs.port_path, "port paths name one half");
    // The root hubs are the controller itself.
    assert_eq!(dev(&ss, "usb1").physical_port, XHCI);
    assert_eq!(dev(&ss, "usb2").physical_port, XHCI);
    // Another connector is another identity; the SS-only port is marked.
    t.device("2-3", &stick(3, "OTHER", true)).unwrap();
    t.device("2-4", &stick(4, "SSONLY", true)).unwrap();
    t.device("1-4", &stick(5, "FOUR", false)).unwrap();
    let l = discover(&t.root()).unwrap();
    assert_eq!(dev(&l, "2-3").physical_port, format!("{XHCI}/1"));
    assert_eq!(dev(&l, "2-4").physical_port, format!("{XHCI}/s4"));
    assert_eq!(dev(&l, "1-4").physical_port, format!("{XHCI}/4"));
    assert_ne!(
        dev(&l, "2-4").physical_port,
        dev(&l, "1-4").physical_port,
        "SS-only port 4 is not USB2 port 4"
    );
}

/// Behind an external USB3 hub: a high-speed device on the hub's USB2
/// half and a SuperSpeed one on its USB3 half get chains through the same
/// connector; the same socket of the hub gives the same identity from
/// either half; both halves of the hub itself share one identity.
#[test]
fn external_usb3_hub_halves() {
    let t = SysfsTree::new().unwrap();
    intel_xhci(&t, 1, 2);
    // Connector HS 4 / SS 2.
    usb3_hub(&t, "1-4", "2-2", 3);
    t.device("1-4.1", &stick(5, "HS-ON-HUB", false)).unwrap();
    t.device("2-2.3", &stick(6, "SS-ON-HUB", true)).unwrap();
    let l = discover(&t.root()).unwrap();
    assert_eq!(dev(&l, "1-4").physical_port, format!("{XHCI}/4"));
    assert_eq!(dev(&l, "2-2").physical_port, format!("{XHCI}/4"));
    assert_eq!(
        by_serial(&l, "HS-ON-HUB").physical_port,
        format!("{XHCI}/4.1")
    );
    assert_eq!(
        by_serial(&l, "SS-ON-HUB").physical_port,
        format!("{XHCI}/4.3")
    );
    // Socket 3 of the hub through its USB2 half.
    t.unplug("2-2.3").unwrap();
    t.device("1-4.3", &stick(7, "SS-ON-HUB", false)).unwrap();
    let l = discover(&t.root()).unwrap();
    assert_eq!(
        by_serial(&l, "SS-ON-HUB").physical_port,
        format!("{XHCI}/4.3")
    );
    assert_eq!(by_serial(&l, "SS-ON-HUB").busid.as_str(), "1-4.3");
    // `physport=` of the hub names both halves: ambiguous (and hubs are
    // refused anyway).
    let err = find(
        &l,
        &Selector::PhysPort {
            port: format!("{XHCI}/4"),
            below: false,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("physical port {XHCI}/4 matches several host USB devices: 1-4, 2-2")
    );
}

/// The same host with its buses numbered differently (the controller
/// probed later, another controller first): every device keeps its
/// physical port while its busid changes.
#[test]
fn renumbered_buses_keep_physical_ports() {
    let build = |hs: u32, ss: u32| {
        let t = SysfsTree::new().unwrap();
        intel_xhci(&t, hs, ss);
        usb3_hub(&t, &format!("{hs}-4"), &format!("{ss}-2"), 3);
        t.device(&format!("{hs}-4.1"), &stick(5, "A", false))
            .unwrap();
        t.device(&format!("{ss}-2.3"), &stick(6, "B", true))
            .unwrap();
        t.device(&format!("{ss}-1"), &stick(7, "C", true)).unwrap();
        t.device(&format!("{hs}-2"), &stick(8, "D", false)).unwrap();
        t
    };
    let first = build(1, 2);
    let renumbered = build(4, 3);
    let a = discover(&first.root()).unwrap();
    let b = discover(&renumbered.root()).unwrap();
    for serial in ["A", "B", "C", "D"] {
        let (x, y) = (by_serial(&a, serial), by_serial(&b, serial));
        assert_ne!(x.busid, y.busid, "{serial}: the fixture must renumber");
        assert_eq!(x.physical_port, y.physical_port, "{serial}");
    }
    assert_eq!(by_serial(&b, "C").physical_port, format!("{XHCI}/3"));
    // And selecting by it finds the device on the renumbered host.
    let sel = Selector::PhysPort {
        port: format!("{XHCI}/4.3"),
        below: false,
    };
    assert_eq!(find(&b, &sel).unwrap().busid.as_str(), "3-2.3");
}

/// A subtree selects any non-hub device below a port; hubs inside it are
/// skipped; several devices are ambiguous, listed; an interface filter
/// picks among them.
#[test]
fn port_subtrees() {
    let t = SysfsTree::new().unwrap();
    intel_xhci(&t, 1, 2);
    usb3_hub(&t, "1-4", "2-2", 3);
    // A USB2 hub on socket 1 of the USB3 hub, a keyboard below it.
    t.device("1-4.1", &DeviceSpec::hub(4, 0x05e3, 0x0608))
        .unwrap();
    t.device(
        "1-4.1.2",
        &DeviceSpec::new(5, 0x046d, 0xc31c)
            .speed("1.5", "1.10")
            .intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1)),
    )
    .unwrap();
    t.device("2-2.3", &stick(6, "DISK", true)).unwrap();
    t.device("1-1", &stick(7, "ELSEWHERE", false)).unwrap();
    let l = discover(&t.root()).unwrap();
    assert_eq!(dev(&l, "1-4.1.2").physical_port, format!("{XHCI}/4.1.2"));
    let below = |port: &str| Selector::PhysPort {
        port: port.to_owned(),
        below: true,
    };
    let err = find(&l, &below(&format!("{XHCI}/4"))).unwrap_err();
    assert!(
        matches!(&err, Error::AmbiguousDevice { matches, .. } if matches == &["1-4.1.2", "2-2.3"]),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("physical port {XHCI}/4.* matches several host USB devices: 1-4.1.2, 2-2.3")
    );
    // Only the keyboard is below the inner hub.
    assert_eq!(
        find(&l, &below(&format!("{XHCI}/4.1")))
            .unwrap()
            .busid
            .as_str(),
        "1-4.1.2"
    );
    // Mass storage only: the disk.
    let storage = InterfaceFilter {
        only: Some(vec![InterfacePattern {
            class: Some(8),
            ..Default::default()
        }]),
        exclude: vec![],
    };
    assert_eq!(
        find_with(&l, &below(&format!("{XHCI}/4")), &storage)
            .unwrap()
            .busid
            .as_str(),
        "2-2.3"
    );
    // The whole controller: three non-hub devices.
    let err = find(&l, &below(XHCI)).unwrap_err();
    assert!(
        matches!(&err, Error::AmbiguousDevice { matches, .. } if matches.len() == 3),
        "{err}"
    );
    // Nothing below a port with nothing plugged in.
    assert!(matches!(
        find(&l, &below(&format!("{XHCI}/5"))),
        Err(Error::DeviceNotFound { .. })
    ));
    // Through the sysfs-reading entry point too.
    assert_eq!(
        locate_with(&t.root(), &below(&format!("{XHCI}/4")), &storage)
            .unwrap()
            .busid
            .as_str(),
        "2-2.3"
    );
}

/// usbguard-like interface conditions: only mass storage; refuse a
/// composite device with a HID keyboard interface.
#[test]
fn interface_filters() {
    let t = SysfsTree::new().unwrap();
    intel_xhci(&t, 1, 2);
    // A "storage" stick that also presents a keyboard (BadUSB-like).
    t.device(
        "1-2",
        &DeviceSpec::new(2, 0x1234, 0x5678)
            .intf(IntfSpec::new(8, Some("usb-storage")).sub(6, 0x50))
            .intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1)),
    )
    .unwrap();
    t.device("1-5", &stick(3, "PLAIN", false)).unwrap();
    let l = discover(&t.root()).unwrap();
    let pat = |c, s, p| InterfacePattern {
        class: c,
        subclass: s,
        protocol: p,
    };
    let only_storage = InterfaceFilter {
        only: Some(vec![pat(Some(8), None, None)]),
        exclude: vec![],
    };
    let no_keyboard = InterfaceFilter {
        only: None,
        exclude: vec![pat(Some(3), None, Some(1))],
    };
    let bad = Selector::BusId(vusb_host::BusId::parse("1-2").unwrap());
    let good = Selector::BusId(vusb_host::BusId::parse("1-5").unwrap());
    for f in [&only_storage, &no_keyboard] {
        assert!(find_with(&l, &good, f).is_ok());
        assert!(
            matches!(find_with(&l, &bad, f), Err(Error::FilteredOut { .. })),
            "{f}"
        );
    }
    assert_eq!(
        find_with(&l, &bad, &only_storage).unwrap_err().to_string(),
        "busid 1-2: no device passes the interface filter (1-2: interface 1-2:1.1 (03:01:01) is not allowed by with-interface=08:*:*)"
    );
    assert_eq!(
        locate_with(&t.root(), &bad, &no_keyboard)
            .unwrap_err()
            .to_string(),
        "busid 1-2: no device passes the interface filter (1-2: interface 1-2:1.1 (03:01:01) is excluded by without-interface=03:*:01)"
    );
    // The default filter lets everything through.
    assert!(find_with(&l, &bad, &InterfaceFilter::default()).is_ok());
}

/// Isochronous endpoints: found in the `descriptors` file even when the
/// current alternate setting (the `ep_XX` directories) has none, as on an
/// idle webcam; found in `ep_XX` when there is no `descriptors` file.
#[test]
fn isochronous_endpoints_from_descriptors_and_ep_dirs() {
    let t = SysfsTree::new().unwrap();
    intel_xhci(&t, 1, 2);
    t.device(
        "1-1",
        &DeviceSpec::new(2, 0x046d, 0x085c)
            .strings("Logitech", "C922 Pro Stream Webcam", None)
            .intf(IntfSpec::new(0x0e, Some("uvcvideo")).sub(1, 0))
            .intf(IntfSpec::new(0x0e, Some("uvcvideo")).sub(2, 0)),
    )
    .unwrap();
    t.endpoint("1-1:1.0", 0x87, 3).unwrap();
    let raw = Descriptors::new(0x046d, 0x085c)
        .interface(0, 0, 0x0e, 1, 0)
        .endpoint(0x87, 3)
        .interface(1, 0, 0x0e, 2, 0)
        .interface(1, 1, 0x0e, 2, 0)
        .endpoint(0x81, 5)
        .bytes();
    t.descriptors("1-1", &raw).unwrap();
    // An audio adapter recorded without `descriptors`: ep dirs only.
    t.device(
        "1-2",
        &DeviceSpec::new(3, 0x0d8c, 0x0014)
            .intf(IntfSpec::new(1, Some("snd-usb-audio")).sub(1, 0))
            .intf(IntfSpec::new(1, Some("snd-usb-audio")).sub(2, 0)),
    )
    .unwrap();
    t.endpoint("1-2:1.1", 0x01, 0x09).unwrap();
    t.device("1-5", &stick(4, "BULK", false)).unwrap();
    t.endpoint("1-5:1.0", 0x81, 2).unwrap();
    t.endpoint("1-5:1.0", 0x02, 2).unwrap();
    let l = discover(&t.root()).unwrap();
    let cam = dev(&l, "1-1").isochronous_endpoint().unwrap();
    assert_eq!((cam.interface, cam.alternate, cam.address), (1, 1, 0x81));
    let audio = dev(&l, "1-2").isochronous_endpoint().unwrap();
    assert_eq!((audio.interface, audio.address), (1, 0x01));
    assert_eq!(audio.transfer, Transfer::Isochronous);
    assert!(dev(&l, "1-5").isochronous_endpoint().is_none());
    assert_eq!(dev(&l, "1-5").endpoints.len(), 2);
    // The single-device read sees the same.
    let one =
        vusb_host::discover::read_one(&t.root(), &vusb_host::BusId::parse("1-1").unwrap()).unwrap();
    assert_eq!(one.endpoints, dev(&l, "1-1").endpoints);
    assert!(!dev(&l, "1-1").is_superspeed());
}
