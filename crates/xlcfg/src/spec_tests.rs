#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn ctrl_item_keys_and_defaults() {
    let s = parse_usbctrl_item("type=pv,version=1,ports=4").unwrap();
    assert_eq!(s.kind, CtrlKind::Pv);
    assert_eq!(s.version, Some(1));
    assert_eq!(s.ports, Some(4));
    assert_eq!(s.model, None);

    let empty = parse_usbctrl_item("").unwrap();
    assert_eq!(empty, UsbCtrlSpec::default());
    assert_eq!(empty.kind, CtrlKind::Auto);
    assert_eq!(empty.version_or_zero(), 0);
}

#[test]
fn ctrl_type_case_insensitive_and_errors() {
    assert_eq!(parse_usbctrl_item("type=PV").unwrap().kind, CtrlKind::Pv);
    assert_eq!(
        parse_usbctrl_item("type=DeviceModel").unwrap().kind,
        CtrlKind::DeviceModel
    );
    assert_eq!(
        parse_usbctrl_item("type=qusb").unwrap().kind,
        CtrlKind::Qusb
    );
    let e = parse_usbctrl_item("type=foo").unwrap_err();
    assert_eq!(e.to_string(), "Invalid usb controller type 'foo'");
    let e = parse_usbctrl_args(&["speed=2"]).unwrap_err();
    assert_eq!(e.to_string(), "Unknown string `speed=2' in usbctrl spec");
    // Keys are case-sensitive.
    let e = parse_usbctrl_item("Type=pv").unwrap_err();
    assert_eq!(e.to_string(), "Unknown string `Type=pv' in usbctrl spec");
    // Trailing spaces are kept, so the type no longer matches.
    let e = parse_usbctrl_item("type=pv ,ports=2").unwrap_err();
    assert_eq!(e.to_string(), "Invalid usb controller type 'pv '");
}

#[test]
fn ctrl_atoi_semantics() {
    let s = parse_usbctrl_args(&["version=abc", "ports=12abc"]).unwrap();
    assert_eq!(s.version, Some(0));
    assert_eq!(s.ports, Some(12));
    assert_eq!(parse_usbctrl_item("ports=-3").unwrap().ports, Some(-3));
}

#[test]
fn item_splitting_follows_strtok() {
    // Empty fields skipped, leading spaces stripped.
    let s = parse_usbctrl_item(",,type=pv,, version=1,").unwrap();
    assert_eq!((s.kind, s.version), (CtrlKind::Pv, Some(1)));
    // Leading tab is not stripped.
    let e = parse_usbctrl_item("\tversion=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown string `\tversion=1' in usbctrl spec"
    );
    // A field of only spaces becomes an empty field: unknown.
    let e = parse_usbdev_item("hostbus=1,  ,hostaddr=2").unwrap_err();
    assert_eq!(e.to_string(), "Unknown string `' in usbdev spec");
    // Repeated keys: last wins.
    let d = parse_usbdev_item("hostbus=1,hostbus=7").unwrap();
    assert_eq!(d.hostbus, Some(7));
}

#[test]
fn dev_item_keys() {
    let d = parse_usbdev_item("type=hostdev,hostbus=3,hostaddr=5,controller=1,port=2").unwrap();
    assert_eq!(d.kind, DevKind::HostDev);
    assert_eq!(d.hostbus, Some(3));
    assert_eq!(d.hostaddr, Some(5));
    assert_eq!(d.controller, Some(1));
    assert_eq!(d.port, Some(2));
    assert!(!d.uses_extensions());

    let d = parse_usbdev_item("hostbus=3,hostaddr=5").unwrap();
    assert_eq!(d.kind, DevKind::HostDev);
    assert_eq!((d.controller, d.port), (None, None));
    assert_eq!(
        parse_usbdev_item("type=HOSTDEV").unwrap().kind,
        DevKind::HostDev
    );
}

#[test]
fn dev_strtoul_numbers() {
    let d = parse_usbdev_args(&["hostbus=0x3", "hostaddr=010"]).unwrap();
    assert_eq!((d.hostbus, d.hostaddr), (Some(3), Some(8)));
    let d = parse_usbdev_args(&["hostbus=008", "hostaddr=0x0a"]).unwrap();
    assert_eq!((d.hostbus, d.hostaddr), (Some(0), Some(10)));
    let d = parse_usbdev_args(&["hostbus=256", "hostaddr=-1"]).unwrap();
    assert_eq!((d.hostbus, d.hostaddr), (Some(0), Some(255)));
    // controller=/port= must be numbers (vusb refuses xl's silent 0).
    let e = parse_usbdev_args(&["port=x"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid port `x' in usbdev spec: not a number"
    );
    for bad in [
        "port=",
        "port=1x",
        "controller=one",
        "controller=-",
        "port=0x1",
    ] {
        assert!(
            matches!(parse_usbdev_item(bad), Err(Error::InvalidDevNumber { .. })),
            "{bad}"
        );
    }
    let d = parse_usbdev_item("controller=-1,port= 2 ").unwrap();
    assert_eq!((d.controller, d.port), (None, Some(2)));
    assert_eq!(parse_usbdev_item("port=+007").unwrap().port, Some(7));
}

/// xl's sentinels `controller=-1` and `port=0` ("any") are `None` at the
/// parser, like an absent key, and the JSON is libxl's (no `ctrl`/`port`);
/// other negative or out-of-range values are refused with the reason.
#[test]
fn dev_sentinels_become_none() {
    let d = parse_usbdev_item("hostbus=1,hostaddr=2,controller=-1,port=0").unwrap();
    assert_eq!((d.controller, d.port), (None, None));
    assert_eq!(d, parse_usbdev_item("hostbus=1,hostaddr=2").unwrap());
    let d = parse_usbdev_args(&["controller=0", "port=1"]).unwrap();
    assert_eq!((d.controller, d.port), (Some(0), Some(1)));
    let json = crate::json::dev_to_json(&parse_usbdev_item("controller=-1,port=0").unwrap());
    assert!(
        json.get("ctrl").is_none() && json.get("port").is_none(),
        "{json}"
    );
    for (bad, msg) in [
        (
            "controller=-2",
            "Invalid controller `-2' in usbdev spec: out of range (a controller devid is 0 or more; -1 means any controller)",
        ),
        (
            "port=-1",
            "Invalid port `-1' in usbdev spec: out of range (ports are numbered from 1; 0 means any port)",
        ),
        (
            "port=4294967297",
            "Invalid port `4294967297' in usbdev spec: out of range",
        ),
        (
            "controller=nan",
            "Invalid controller `nan' in usbdev spec: not a number",
        ),
    ] {
        assert_eq!(
            parse_usbdev_item(bad).unwrap_err().to_string(),
            msg,
            "{bad}"
        );
    }
}

#[test]
fn number_args_are_refused_unless_numbers() {
    assert_eq!(crate::parse_number_arg("devid", "3"), Ok(3));
    assert_eq!(crate::parse_number_arg("devid", " -1"), Ok(-1));
    for bad in ["nan", "", "0x1", "1a", "-"] {
        assert_eq!(
            crate::parse_number_arg("devid", bad)
                .unwrap_err()
                .to_string(),
            format!("Invalid devid `{bad}': not a number")
        );
    }
    assert_eq!(
        crate::parse_number_arg("port", "99999999999")
            .unwrap_err()
            .to_string(),
        "Invalid port `99999999999': out of range"
    );
}

#[test]
fn cli_args_are_not_split_on_commas() {
    let d = parse_usbdev_args(&["hostbus=1,hostaddr=2"]).unwrap();
    assert_eq!(d.hostbus, Some(1));
    assert_eq!(d.hostaddr, None);
    // No leading-space stripping on the command line either.
    let e = parse_usbdev_args(&[" hostbus=1"]).unwrap_err();
    assert_eq!(e.to_string(), "Unknown string ` hostbus=1' in usbdev spec");
    // ... but the same text in a config item is two fields.
    let d = parse_usbdev_item("hostbus=1, hostaddr=2").unwrap();
    assert_eq!((d.hostbus, d.hostaddr), (Some(1), Some(2)));
}

#[test]
fn dev_type_errors_name_the_value() {
    let e = parse_usbdev_item("type=printer").unwrap_err();
    assert_eq!(e.to_string(), "Invalid usb device type: printer");
    assert_eq!(
        e,
        Error::InvalidDevType {
            value: "printer".into()
        }
    );
    let e = parse_usbdev_args(&["bogus"]).unwrap_err();
    assert_eq!(e.to_string(), "Unknown string `bogus' in usbdev spec");
}

#[test]
fn dev_extensions() {
    let d = parse_usbdev_item("vendor=046d,product=0xC52B,serial=ABC 12").unwrap();
    assert_eq!(d.vendor, Some(0x046d));
    assert_eq!(d.product, Some(0xc52b));
    assert_eq!(d.serial.as_deref(), Some("ABC 12"));
    assert!(d.uses_extensions());

    let d = parse_usbdev_item("busid=3-1.2").unwrap();
    assert_eq!(d.busid.as_deref(), Some("3-1.2"));
    let d = parse_usbdev_item("hostbus=2,portpath=1.4.2").unwrap();
    assert_eq!(d.portpath.as_deref(), Some("1.4.2"));
    // What usb-assignable-list prints is accepted as is.
    for p in ["usb1-1", "0000:00:14.0-1.2", "3-1.2", "0000:00:14.0/3.2"] {
        let d = parse_usbdev_item(&format!("portpath={p}")).unwrap();
        assert_eq!(d.portpath.as_deref(), Some(p));
    }

    for kind in ["tablet", "Mouse", "KEYBOARD"] {
        let d = parse_usbdev_args(&[format!("type={kind}")]).unwrap();
        assert_eq!(d.kind.as_str(), kind.to_ascii_lowercase());
        assert!(d.uses_extensions());
    }

    for bad in [
        "vendor=",
        "vendor=12345",
        "vendor=xyz",
        "product=0x",
        "busid=3",
        "busid=usb3",
        "busid=3-",
        "busid=3-1..2",
        "busid=0-1",
        "portpath=1.",
        "portpath=0",
        "portpath=-1.2",
        "portpath=usb1-",
        "portpath=a b-1",
        "serial=",
    ] {
        let e = parse_usbdev_item(bad).unwrap_err();
        assert!(
            matches!(e, Error::InvalidExtensionValue { .. }),
            "{bad}: {e:?}"
        );
    }
    let e = parse_usbdev_item("vendor=zz").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid value `zz' for `vendor' in usbdev spec: 1 to 4 hexadecimal digits, e.g. 046d"
    );
    let c = parse_usbctrl_item("type=devicemodel,version=3,model=qemu-xhci").unwrap();
    assert_eq!(c.model.as_deref(), Some("qemu-xhci"));
    assert!(parse_usbctrl_item("model=").is_err());
}

#[test]
fn display_round_trips() {
    for item in [
        "type=pv,version=2,ports=8",
        "",
        "type=devicemodel,version=3,ports=15,model=qemu-xhci",
    ] {
        let s = parse_usbctrl_item(item).unwrap();
        assert_eq!(parse_usbctrl_item(&s.to_string()).unwrap(), s);
    }
    for item in [
        "hostbus=3,hostaddr=5",
        "type=hostdev,hostbus=0x10,hostaddr=010,controller=0,port=2",
        "vendor=46d,product=c52b,serial=X1",
        "type=tablet",
        "busid=1-1.4,portpath=1.4,hostbus=1",
    ] {
        let d = parse_usbdev_item(item).unwrap();
        let text = d.to_string();
        assert!(text.starts_with("type="), "{text}");
        assert_eq!(parse_usbdev_item(&text).unwrap(), d, "{item} -> {text}");
    }
}

#[test]
fn physport_and_interface_filters_in_items_and_args() {
    let s = parse_usbdev_item(
        "physport=0000:00:14.0/2.*, with-interface=08:06,without-interface=03:*:01+e0",
    )
    .unwrap();
    let p = s.physport.as_ref().unwrap();
    assert_eq!((p.port.as_str(), p.below), ("0000:00:14.0/2", true));
    assert_eq!(s.with_interface.as_ref().unwrap().len(), 1);
    assert_eq!(s.without_interface.as_ref().unwrap().len(), 2);
    assert!(s.uses_extensions());
    let text = s.to_string();
    assert_eq!(
        text,
        "type=hostdev,physport=0000:00:14.0/2.*,with-interface=08:06:*,without-interface=03:*:01+e0:*:*"
    );
    assert_eq!(parse_usbdev_item(&text).unwrap(), s);
    let a = parse_usbdev_args(&["physport=0000:00:14.0/s3"]).unwrap();
    assert_eq!(a.physport.unwrap().port, "0000:00:14.0/s3");
    let e = parse_usbdev_args(&["physport=1-2"]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Invalid value `1-2' for `physport' in usbdev spec"),
        "{e}"
    );
    let e = parse_usbdev_item("with-interface=mass-storage").unwrap_err();
    assert!(e.to_string().contains("with-interface"), "{e}");
}
