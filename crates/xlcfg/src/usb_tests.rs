#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::parser::parse;
use crate::spec::{CtrlKind, DevKind};

fn usb(src: &str) -> (UsbConfig, Vec<Warning>) {
    usb_config(&parse(src).unwrap()).unwrap()
}

#[test]
fn ctrls_get_list_index_devids() {
    let (u, w) = usb("usbctrl=['type=pv,version=1,ports=4', '', 'type=devicemodel']\n");
    assert!(w.is_empty());
    assert_eq!(u.ctrls.len(), 3);
    assert_eq!(
        u.ctrls.iter().map(|c| c.devid).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(u.ctrls[0].spec.kind, CtrlKind::Pv);
    assert_eq!(u.ctrls[1].spec, UsbCtrlSpec::default());
    assert_eq!(u.ctrls[2].spec.kind, CtrlKind::DeviceModel);
    assert_eq!(u.ctrls[0].pos, Some(Pos { line: 1, col: 10 }));
}

#[test]
fn single_value_is_a_warning_and_ignored() {
    let (u, w) = usb("name='g'\n\nusbctrl='type=pv'\nusbdev=\"hostbus=1\"\n");
    assert!(u.ctrls.is_empty() && u.devs.is_empty());
    let text: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "3: warning: parameter `usbctrl' is a single value but should be a list",
            "4: warning: parameter `usbdev' is a single value but should be a list",
        ]
    );
}

#[test]
fn nested_list_item_stops_like_xl() {
    let (u, w) = usb("usbdev=['hostbus=1,hostaddr=2', ['x'], 'hostbus=3']\n");
    assert_eq!(u.devs.len(), 1);
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("xl ignores it"));
}

#[test]
fn spec_errors_carry_the_item_position() {
    let e = usb_config(&parse("usbdev=[\n  'hostbus=1',\n  'hostbus=2, speed=3'\n]\n").unwrap())
        .unwrap_err();
    assert_eq!(e.position(), Some((3, 3)));
    let Error::SpecInFile { source, key, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(key, "usbdev");
    assert_eq!(
        source.to_string(),
        "Unknown string `speed=3' in usbdev spec"
    );
    let e = usb_config(&parse("usbctrl=['type=xhci']\n").unwrap()).unwrap_err();
    assert_eq!(e.position(), Some((1, 10)));
}

#[test]
fn devices_default_to_hostdev() {
    let (u, _) = usb(
        "usbdev=['hostbus=0x3,hostaddr=010', 'type=hostdev,hostbus=008,hostaddr=2,controller=1,port=2']\n",
    );
    let d0 = &u.devs[0].spec;
    assert_eq!(
        (d0.kind, d0.hostbus, d0.hostaddr),
        (DevKind::HostDev, Some(3), Some(8))
    );
    let d1 = &u.devs[1].spec;
    assert_eq!(
        (d1.hostbus, d1.controller, d1.port),
        (Some(0), Some(1), Some(2))
    );
}

#[test]
fn guest_type_quirks() {
    let ty = |src: &str| usb(src).0.guest_type;
    assert_eq!(ty(""), GuestType::Pv);
    assert_eq!(ty("type='hvm'\n"), GuestType::Hvm);
    assert_eq!(ty("type='h'\n"), GuestType::Hvm);
    assert_eq!(ty("type=''\n"), GuestType::Hvm);
    assert_eq!(ty("type='p'\n"), GuestType::Pv);
    assert_eq!(ty("type='pvh'\n"), GuestType::Pvh);
    assert_eq!(ty("builder='hvm'\n"), GuestType::Hvm);
    assert_eq!(ty("builder='generic'\n"), GuestType::Pv);
    assert_eq!(ty("type='hvm'\nbuilder='hvm'\n"), GuestType::Hvm);
    let e = usb_config(&parse("type='HVM'\n").unwrap()).unwrap_err();
    assert_eq!(e.to_string(), "1:6: Invalid domain type HVM.");
    let e = usb_config(&parse("type='pv'\nbuilder='hvm'\n").unwrap()).unwrap_err();
    assert!(e.to_string().contains("Contradicting"));
}

#[test]
fn legacy_options_only_for_hvm() {
    let src = "usb=1\nusbversion=2\nusbdevice=['tablet','host:1.2']\n";
    let (u, _) = usb(src);
    assert!(u.legacy.is_empty(), "PV guest ignores legacy options");
    let (u, w) = usb(&format!("type='hvm'\n{src}"));
    assert_eq!(u.legacy.usb, Some(true));
    assert_eq!(u.legacy.usbversion, Some(2));
    assert_eq!(
        u.legacy.usbdevice_list,
        Some(vec!["tablet".to_owned(), "host:1.2".to_owned()])
    );
    assert_eq!(u.legacy.usbdevice, None);
    assert_eq!(w.len(), 1, "libxl refuses usbversion with usb: {w:?}");

    let (u, w) = usb("builder='hvm'\nusbdevice='tablet'\nusb=0\nusbversion='x'\n");
    assert_eq!(u.legacy.usbdevice.as_deref(), Some("tablet"));
    assert_eq!(u.legacy.usbdevice_list, None);
    assert_eq!(u.legacy.usb, Some(false));
    assert_eq!(u.legacy.usbversion, None);
    assert_eq!(
        w[0].to_string(),
        "4: warning: parameter `usbversion' is not a valid number"
    );
}

#[test]
fn undefined_controller_is_a_warning() {
    let (u, w) = usb(
        "usbctrl=['']\nusbdev=['hostbus=1,controller=0','hostbus=2,controller=1','controller=-1']\n",
    );
    assert_eq!(u.devs.len(), 3);
    let text: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "2:34: warning: usbdev 1 names controller 1, which this file does not define (xl create would fail)"
        ]
    );
}
