//! Component tests: discovery, lookups and assignability against fixture
//! sysfs trees built by `vusb_testsupport::sysfs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vusb_host::assignable::{self, Refusal};
use vusb_host::lookup::{Selector, find};
use vusb_host::{BusId, Error, UsbDevice, discover, usage};
use vusb_testsupport::sysfs::{DeviceSpec, IntfSpec, SysfsTree, typical_host};

fn dev<'a>(list: &'a [UsbDevice], busid: &str) -> &'a UsbDevice {
    list.iter()
        .find(|d| d.busid.as_str() == busid)
        .unwrap_or_else(|| panic!("{busid} not discovered"))
}

#[test]
fn discovers_every_device_with_its_description() {
    let t = typical_host().unwrap();
    let list = discover(&t.root()).unwrap();
    let names: Vec<&str> = list.iter().map(|d| d.busid.as_str()).collect();
    assert_eq!(names, ["usb1", "1-1", "1-2", "1-2.1", "usb2", "2-1"]);
    assert_eq!(dev(&list, "usb1").interfaces[0].name, "1-0:1.0");
    let kbd = dev(&list, "1-1");
    assert_eq!((kbd.busnum, kbd.devnum), (1, 2));
    assert_eq!(kbd.vid_pid(), "046d:c31c");
    assert_eq!(kbd.product.as_deref(), Some("USB Keyboard"));
    assert_eq!(kbd.serial, None);
    assert_eq!(kbd.speed_kbps, Some(1500));
    assert_eq!(kbd.usb_version.as_deref(), Some("1.10"));
    assert_eq!(kbd.port_path, "0000:00:14.0-1");
    assert_eq!(kbd.controller.as_deref(), Some("0000:00:14.0"));
    assert_eq!(kbd.interfaces.len(), 2);
    assert_eq!(kbd.interfaces[0].name, "1-1:1.0");
    assert_eq!(kbd.interfaces[0].driver.as_deref(), Some("usbhid"));
    assert_eq!(
        (
            kbd.interfaces[0].class,
            kbd.interfaces[0].subclass,
            kbd.interfaces[0].protocol
        ),
        (3, 1, 1)
    );
    let port = kbd.port.as_ref().unwrap();
    assert_eq!(port.port, "usb1-port1");
    assert_eq!(port.peer.as_deref(), Some("usb2-port1"));
    let stick = dev(&list, "1-2.1");
    let parents: Vec<&str> = stick.parents.iter().map(BusId::as_str).collect();
    assert_eq!(parents, ["1-2", "usb1"]);
    assert_eq!(stick.port_path, "0000:00:14.0-2.1");
    assert_eq!(stick.port.as_ref().unwrap().port, "1-2-port1");
    let disk = dev(&list, "2-1");
    assert_eq!(disk.speed_kbps, Some(5_000_000));
    assert_eq!(
        disk.port.as_ref().unwrap().peer.as_deref(),
        Some("usb1-port1")
    );
    // The USB3 disk's companion port is where the keyboard sits.
    assert_eq!(
        disk.port
            .as_ref()
            .unwrap()
            .peer_device
            .as_ref()
            .map(BusId::as_str),
        Some("1-1")
    );
}

#[test]
fn values_without_newlines_and_non_ascii_strings() {
    let t = SysfsTree::new().unwrap().without_newlines();
    t.root_hub(3, "0000:00:1d.0", "2.00", 2).unwrap();
    t.device(
        "3-2",
        &DeviceSpec::new(7, 0x1a86, 0x7523)
            .strings("Générique", "USB-Série  ✓", Some("ÄÖ-1"))
            .speed("12", "1.10"),
    )
    .unwrap();
    let list = discover(&t.root()).unwrap();
    let d = dev(&list, "3-2");
    assert_eq!(d.manufacturer.as_deref(), Some("Générique"));
    assert_eq!(d.product.as_deref(), Some("USB-Série  ✓"));
    assert_eq!(d.serial.as_deref(), Some("ÄÖ-1"));
    assert_eq!(
        (d.devnum, d.speed_kbps, d.usb_version.as_deref()),
        (7, Some(12_000), Some("1.10"))
    );
}

#[test]
fn a_broken_device_is_skipped_not_fatal() {
    let t = typical_host().unwrap();
    let devpath = t.devpath("1-1").unwrap();
    std::fs::write(t.root().join(&devpath).join("idVendor"), "zzzz\n").unwrap();
    let list = discover(&t.root()).unwrap();
    assert!(list.iter().all(|d| d.busid.as_str() != "1-1"));
    assert_eq!(list.len(), 5);
    // Reading the broken one directly names the file.
    let err = vusb_host::discover::read_one(&t.root(), &BusId::parse("1-1").unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("idVendor") && text.contains("zzzz"), "{text}");
}

#[test]
fn inconsistent_busnum_prefers_the_path() {
    let t = typical_host().unwrap();
    let devpath = t.devpath("1-1").unwrap();
    std::fs::write(t.root().join(&devpath).join("busnum"), "7\n").unwrap();
    let list = discover(&t.root()).unwrap();
    assert_eq!(dev(&list, "1-1").busnum, 1);
}

#[test]
fn missing_sysfs_is_an_empty_host() {
    let dir = tempfile::tempdir().unwrap();
    assert!(discover(dir.path()).unwrap().is_empty());
}

#[test]
fn lookups_by_every_identity() {
    let t = typical_host().unwrap();
    let list = discover(&t.root()).unwrap();
    let by = |s: Selector| find(&list, &s).map(|d| d.busid.to_string());
    assert_eq!(by(Selector::bus_addr("1", "0x04")).unwrap(), "1-2.1");
    assert_eq!(by(Selector::bus_addr("01", "04")).unwrap(), "1-2.1");
    assert_eq!(
        by(Selector::bus_addr("257", "2")).unwrap(),
        "1-1",
        "257 wraps to 1 as in xl"
    );
    assert!(
        matches!(
            by(Selector::bus_addr("1", "008")),
            Err(Error::DeviceNotFound { .. })
        ),
        "008 is 0"
    );
    assert_eq!(
        by(Selector::BusId(BusId::parse("2-1").unwrap())).unwrap(),
        "2-1"
    );
    assert_eq!(
        by(Selector::parse_vid_pid("0781:5567").unwrap()).unwrap(),
        "1-2.1"
    );
    assert_eq!(
        by(Selector::parse_vid_pid("0bc2:2322:NAAB1234").unwrap()).unwrap(),
        "2-1"
    );
    assert!(matches!(
        by(Selector::parse_vid_pid("0bc2:2322:OTHER").unwrap()),
        Err(Error::DeviceNotFound { .. })
    ));
    assert_eq!(
        by(Selector::PortPath("0000:00:14.0-2.1".into())).unwrap(),
        "1-2.1"
    );
    assert_eq!(by(Selector::PortPath("1-2.1".into())).unwrap(), "1-2.1");
    let err = by(Selector::BusAddr { bus: 9, addr: 9 })
        .unwrap_err()
        .to_string();
    assert_eq!(err, "no host USB device with hostbus 9 hostaddr 9");
    assert!(Selector::parse_vid_pid("xyz:1").is_err());
    assert!(Selector::parse_vid_pid("1234").is_err());
}

#[test]
fn identical_adapters_are_ambiguous_by_vendor_product_and_serial() {
    let t = SysfsTree::new().unwrap();
    t.root_hub(1, "0000:00:14.0", "2.00", 4).unwrap();
    let ftdi = |n| {
        DeviceSpec::new(n, 0x0403, 0x6001)
            .strings("FTDI", "FT232R USB UART", Some("A50285BI"))
            .intf(IntfSpec::new(0xff, Some("ftdi_sio")))
    };
    t.device("1-3", &ftdi(5)).unwrap();
    t.device("1-4", &ftdi(6)).unwrap();
    let list = discover(&t.root()).unwrap();
    let err = find(
        &list,
        &Selector::parse_vid_pid("0403:6001:A50285BI").unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vendor:product:serial 0403:6001:A50285BI matches several host USB devices: 1-3, 1-4"
    );
    // The port path tells them apart.
    assert_eq!(
        find(&list, &Selector::PortPath("0000:00:14.0-4".into()))
            .unwrap()
            .busid
            .as_str(),
        "1-4"
    );
}

#[test]
fn assignability_with_reasons() {
    let t = typical_host().unwrap();
    // A keyboard with a built-in hub: the hub is a device of its own; and a
    // device that is a hub only by an interface.
    t.device("1-3", &DeviceSpec::hub(5, 0x04d9, 0x1503))
        .unwrap();
    t.device(
        "1-3.1",
        &DeviceSpec::new(6, 0x04d9, 0x1702).intf(IntfSpec::new(3, Some("usbhid")).sub(1, 1)),
    )
    .unwrap();
    t.device(
        "1-4",
        &DeviceSpec::new(7, 0x2109, 0x2817).intf(IntfSpec::new(9, Some("hub"))),
    )
    .unwrap();
    let list = discover(&t.root()).unwrap();
    let uses = usage::block_uses(&t.root(), &t.proc_root()).unwrap();
    assert_eq!(uses.len(), 1, "{uses:?}");
    let verdict = |b: &str, force| assignable::check(dev(&list, b), &list, &uses, force);
    assert_eq!(verdict("usb1", false), Some(Refusal::RootHub));
    assert_eq!(
        verdict("1-3", false),
        Some(Refusal::Hub {
            by_interface: false
        })
    );
    assert_eq!(
        verdict("1-4", false),
        Some(Refusal::Hub { by_interface: true })
    );
    assert_eq!(verdict("1-3.1", false), None);
    assert_eq!(verdict("1-1", false), None);
    assert_eq!(verdict("2-1", false), None, "the USB3 disk is not mounted");
    let stick = verdict("1-2.1", false).unwrap();
    assert_eq!(
        stick.to_string(),
        "in use by the host: /dev/sdb1 is mounted on /media/user/CRUZER"
    );
    assert_eq!(verdict("1-2.1", true), None, "--force overrides in-use");
    let hub = verdict("1-2", true).unwrap();
    assert_eq!(
        hub.to_string(),
        "hub above 1-2.1, which the host is using: /dev/sdb1 is mounted on /media/user/CRUZER"
    );
    assert!(!hub.forceable());
}

#[test]
fn swap_and_holders_count_as_in_use() {
    let t = typical_host().unwrap();
    t.swap("/dev/sdc1").unwrap();
    let uses = usage::block_uses(&t.root(), &t.proc_root()).unwrap();
    let list = discover(&t.root()).unwrap();
    let r = assignable::check(dev(&list, "2-1"), &list, &uses, false).unwrap();
    assert_eq!(
        r.to_string(),
        "in use by the host: /dev/sdc1 is in use as swap"
    );

    let t = typical_host().unwrap();
    t.holder("sdc/sdc1", "dm-0").unwrap();
    let uses = usage::block_uses(&t.root(), &t.proc_root()).unwrap();
    let r = assignable::check(dev(&list, "2-1"), &list, &uses, false).unwrap();
    assert_eq!(
        r.to_string(),
        "in use by the host: /dev/sdc1 is held by dm-0"
    );
}

#[test]
fn garbage_in_any_attribute_is_never_fatal() {
    let t = typical_host().unwrap();
    let mut files = Vec::new();
    let mut stack = vec![t.root().join("devices")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\xff\xfe\n",
        b"0x\n",
        b"99999999999999999999\n",
        b"-1",
    ];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, garbage[i % garbage.len()]).unwrap();
    }
    let list = discover(&t.root()).unwrap();
    for d in &list {
        assert!(d.busid.bus() > 0);
    }
    let uses = usage::block_uses(&t.root(), &t.proc_root()).unwrap();
    for d in &list {
        let _ = assignable::check(d, &list, &uses, false);
    }
}

/// The narrow lookup used by attach gives exactly what the full discovery
/// and `find` give, for every device by bus.addr and by busid, and the
/// same refusals for an unknown address or busid.
#[test]
fn locate_agrees_with_find_over_discovery() {
    use vusb_host::lookup::locate;
    let t = typical_host().unwrap();
    let root = t.root();
    let all = discover(&root).unwrap();
    assert!(all.len() > 3, "fixture too small to mean anything");
    // A device read alone does not name the device on its companion port.
    let alone = |d: &UsbDevice| {
        let mut d = d.clone();
        if let Some(p) = d.port.as_mut() {
            p.peer_device = None;
        }
        d
    };
    for d in &all {
        let by_addr = Selector::BusAddr {
            bus: d.busnum,
            addr: d.devnum,
        };
        let narrow = locate(&root, &by_addr).unwrap();
        assert_eq!(narrow, alone(find(&all, &by_addr).unwrap()), "{}", d.busid);
        let by_busid = Selector::BusId(d.busid.clone());
        assert_eq!(locate(&root, &by_busid).unwrap(), alone(d));
    }
    for missing in [
        Selector::BusAddr { bus: 9, addr: 9 },
        Selector::BusAddr { bus: 0, addr: 2 },
        Selector::BusId(BusId::parse("7-7").unwrap()),
    ] {
        assert!(matches!(
            locate(&root, &missing),
            Err(Error::DeviceNotFound { .. })
        ));
    }
}

/// A bind or unbind whose write succeeds but leaves the `driver` link as it
/// was (a driver that refused the interface silently; here plain files
/// that move nothing) is an error naming the interface and the driver, not
/// a success.
#[test]
fn a_write_that_moves_nothing_is_an_error() {
    use vusb_host::bind;
    let t = typical_host().unwrap();
    t.driver("usbback").unwrap();
    let root = t.root();
    let err = bind::unbind(&root, "1-1:1.0").unwrap_err();
    assert!(
        matches!(&err, Error::Unbind { interface, driver, .. } if interface == "1-1:1.0" && driver == "usbhid"),
        "{err:?}"
    );
    let err = bind::bind(&root, "usbback", "1-1:1.0").unwrap_err();
    assert!(
        matches!(&err, Error::Bind { interface, driver, .. } if interface == "1-1:1.0" && driver == "usbback"),
        "{err:?}"
    );
    // Already where it should be: no write, no wait.
    bind::bind(&root, "usbhid", "1-1:1.0").unwrap();
}
