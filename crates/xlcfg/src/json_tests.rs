#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::spec::{parse_usbctrl_item, parse_usbdev_item};

#[test]
fn ctrl_fields_left_out_at_defaults() {
    let s = parse_usbctrl_item("").unwrap();
    assert_eq!(ctrl_to_json(-1, &s), json!({}));
    assert_eq!(ctrl_to_json(0, &s), json!({"devid": 0}));
    let s = parse_usbctrl_item("type=pv,version=0,ports=8").unwrap();
    assert_eq!(
        ctrl_to_json(2, &s),
        json!({"type": "pv", "devid": 2, "ports": 8})
    );
    let s = parse_usbctrl_item("type=devicemodel,version=3,model=qemu-xhci").unwrap();
    assert_eq!(
        ctrl_to_json(1, &s),
        json!({"type": "devicemodel", "devid": 1, "version": 3, "vusb": {"model": "qemu-xhci"}})
    );
}

#[test]
fn dev_shape_fixes_j2() {
    let d = parse_usbdev_item("hostbus=3,hostaddr=5").unwrap();
    assert_eq!(
        dev_to_json(&d),
        json!({"type.hostdev": {"hostbus": 3, "hostaddr": 5}})
    );
    let d = parse_usbdev_item("type=hostdev,hostbus=008,controller=0,port=1").unwrap();
    assert_eq!(
        dev_to_json(&d),
        json!({"ctrl": 0, "port": 1, "type.hostdev": {}})
    );
    let d = parse_usbdev_item("type=tablet,controller=1").unwrap();
    assert_eq!(
        dev_to_json(&d),
        json!({"ctrl": 1, "vusb": {"type": "tablet"}})
    );
    let d =
        parse_usbdev_item("vendor=46d,product=c52b,serial=S 1,busid=1-1.2,portpath=1.2").unwrap();
    assert_eq!(
        dev_to_json(&d),
        json!({"type.hostdev": {}, "vusb": {"busid": "1-1.2", "vendor": "046d", "product": "c52b", "serial": "S 1", "portpath": "1.2"}})
    );
}

#[test]
fn key_order_follows_libxl() {
    let d = parse_usbdev_item("port=2,hostaddr=5,controller=1,hostbus=3").unwrap();
    let text = serde_json::to_string(&dev_to_json(&d)).unwrap();
    assert_eq!(
        text,
        r#"{"ctrl":1,"port":2,"type.hostdev":{"hostbus":3,"hostaddr":5}}"#
    );
}

#[test]
fn round_trip_through_json() {
    let (cfg, _) = crate::parse_usb(
        "type='hvm'\nusb=1\nusbdevice='tablet'\nusbctrl=['version=2','type=qusb,ports=4,model=x']\n\
         usbdev=['hostbus=1,hostaddr=2,controller=1,port=3','type=mouse','vendor=1234,serial=abc']\n",
    )
    .unwrap();
    let v = to_json(&cfg);
    let back = from_json(&v).unwrap();
    assert_eq!(to_json(&back), v);
    assert_eq!(back.guest_type, GuestType::Hvm);
    assert_eq!(back.legacy, cfg.legacy);
    assert_eq!(back.ctrls.len(), 2);
    assert_eq!(back.ctrls[1].devid, 1);
    assert_eq!(back.ctrls[1].spec, cfg.ctrls[1].spec);
    for (a, b) in back.devs.iter().zip(&cfg.devs) {
        assert_eq!(a.spec, b.spec);
    }
}

#[test]
fn reads_libxl_own_json() {
    // What libxl stores for a hot-plugged device, and for a J2 device.
    let v = json!({"c_info": {"type": "pv", "name": "g"}, "b_info": {"type.pv": {}},
                   "disks": [], "usbctrls": [{"type": "pv", "devid": 0, "version": 2, "ports": 8,
                   "backend_domid": 0}], "usbdevs": [{"ctrl": 0, "port": 1,
                   "type.hostdev": {"hostbus": 3, "hostaddr": 5}}, {}]});
    let cfg = from_json(&v).unwrap();
    assert_eq!(cfg.ctrls[0].spec.kind, CtrlKind::Pv);
    assert_eq!(cfg.ctrls[0].spec.ports, Some(8));
    assert_eq!(cfg.devs[0].spec.hostaddr, Some(5));
    assert_eq!(cfg.devs[1].spec.kind, DevKind::HostDev);
    assert_eq!(cfg.devs[1].spec.hostbus, None);
}

#[test]
fn bad_json_names_the_place() {
    for (v, path) in [
        (json!([]), "$"),
        (json!({"usbdevs": [{"ctrl": "x"}]}), "usbdevs[0].ctrl"),
        (
            json!({"usbdevs": [{"type.hostdev": {"hostbus": 300}}]}),
            "usbdevs[0].type.hostdev.hostbus",
        ),
        (json!({"usbctrls": [{"type": "xhci"}]}), "usbctrls[0].type"),
        (
            json!({"usbdevs": [{"vusb": {"vendor": "zz"}}]}),
            "usbdevs[0].vusb.vendor",
        ),
        (json!({"c_info": {"type": "kvm"}}), "c_info.type"),
        (json!({"usbctrls": {}}), "usbctrls"),
    ] {
        match from_json(&v) {
            Err(Error::InvalidJson { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{v}: {other:?}"),
        }
    }
}

/// Fuzz finding (crash-96b4fd50): `usbversion = 0` is set but default, so
/// it must not produce an empty `b_info`, which did not survive the JSON
/// round trip.
#[test]
fn default_legacy_value_writes_no_b_info() {
    let src = "type = \"hvm\"\nname = \"usb3\"\nmemory = 2048\nusbversion =  0\n";
    let (cfg, _) = crate::parse_usb(src).unwrap();
    assert_eq!(cfg.legacy.usbversion, Some(0));
    let v = to_json(&cfg);
    assert_eq!(v, json!({"c_info": {"type": "hvm"}}));
    assert_eq!(to_json(&from_json(&v).unwrap()), v);
}
