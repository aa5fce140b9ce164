//! xl's golden QMP sequences (`tests/golden/devicemodel-qmp/*/qmp.log`,
//! recorded from Debian's xl 4.17) reproduced by vusb against a real QEMU:
//! one connection per operation, as libxl, with every line vusb sends
//! recorded. The `qmp_capabilities` / `device_add` / `device_del` requests
//! must equal xl's (ids aside); vusb's extra read-only queries (`qom-list`
//! to check that a removal completed) are listed separately.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vusb_core::devicemodel::{ArgStyle, DmConn, DmDevice, resolve_controller};
use vusb_qmp::Qmp;
use vusb_testsupport::qemu::require_or_skip;

fn golden(step: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/devicemodel-qmp")
        .join(step)
        .join("qmp.log");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            // "<file> <time> <json>"
            let json = l.splitn(3, ' ').nth(2).expect("log line");
            strip_id(serde_json::from_str(json).expect("json"))
        })
        .collect()
}

fn strip_id(mut v: Value) -> Value {
    v.as_object_mut().expect("object").remove("id");
    v
}

/// Open a connection recording what is sent from the first byte.
fn conn(sock: &Path, style: ArgStyle) -> DmConn {
    let mut qmp = Qmp::new(vusb_qmp::connect_unix(sock, Duration::from_secs(10)).expect("connect"));
    qmp.set_timeout(Duration::from_secs(10));
    qmp.record_sent();
    qmp.handshake().expect("handshake");
    let mut c = DmConn::from_qmp(qmp);
    c.set_arg_style(style);
    c
}

/// The state-changing requests sent, ids stripped; and the others' names.
fn sent(c: &mut DmConn) -> (Vec<Value>, Vec<String>) {
    let mut changing = Vec::new();
    let mut queries = Vec::new();
    for line in c.qmp().sent() {
        let v: Value = serde_json::from_str(line).unwrap();
        let name = v["execute"].as_str().unwrap().to_string();
        if ["qmp_capabilities", "device_add", "device_del"].contains(&name.as_str()) {
            changing.push(strip_id(v));
        } else {
            queries.push(name);
        }
    }
    (changing, queries)
}

#[test]
fn xl_golden_sequences_reproduced_in_xl417_style() {
    let Some(vm) = require_or_skip("xl_golden_sequences") else {
        return;
    };
    let sock = vm.qmp_path();
    let style = ArgStyle::Xl417;
    let mut all = Vec::new();

    // 01: usbctrl-attach (HVM auto: version 2) -> devid 0
    let mut c = conn(sock, style);
    c.add_controller(0, &resolve_controller(0, 0, None).unwrap())
        .unwrap();
    all.push(("01-usbctrl-attach-auto-hvm", sent(&mut c).0));
    // 02: version=3 ports=4 -> devid 1
    drop(c);
    let mut c = conn(sock, style);
    c.add_controller(1, &resolve_controller(3, 4, None).unwrap())
        .unwrap();
    all.push(("02-usbctrl-attach-v3-4ports", sent(&mut c).0));
    // 03: hostbus=1 hostaddr=2 auto -> controller 0 port 1. QEMU here has no
    // USB host devices and refuses it; the request is what is compared.
    drop(c);
    let mut c = conn(sock, style);
    let e = c
        .add_device(0, 1, &DmDevice::HostAddr { bus: 1, addr: 2 })
        .unwrap_err();
    assert_eq!(
        e.qmp().qemu_desc(),
        Some("failed to find host usb device 1:2")
    );
    all.push(("03-usbdev-attach-auto", sent(&mut c).0));
    // 04
    drop(c);
    let mut c = conn(sock, style);
    c.add_device(1, 2, &DmDevice::HostAddr { bus: 1, addr: 3 })
        .unwrap_err();
    all.push(("04-usbdev-attach-ctrl1-port2", sent(&mut c).0));
    // 06: usbdev-detach 0 1 -> device_del xenusb-1-2 (absent in this QEMU)
    drop(c);
    let mut c = conn(sock, style);
    c.remove_device("xenusb-1-2", Duration::from_millis(200))
        .unwrap();
    all.push(("06-usbdev-detach-0-1", sent(&mut c).0));
    // 07: usbctrl-detach 1 with device xenusb-1-3: two connections
    drop(c);
    let mut c = conn(sock, style);
    c.remove_device("xenusb-1-3", Duration::from_millis(200))
        .unwrap();
    let (mut seq, _) = sent(&mut c);
    drop(c); // QEMU serves one QMP client at a time
    let mut c = conn(sock, style);
    c.remove_controller(1, Duration::from_millis(200)).unwrap();
    let (more, queries) = sent(&mut c);
    assert!(queries.iter().all(|q| q == "qom-list"), "{queries:?}");
    seq.extend(more);
    all.push(("07-usbctrl-detach-1-with-dev", seq));
    // 08
    drop(c);
    let mut c = conn(sock, style);
    c.remove_controller(0, Duration::from_millis(200)).unwrap();
    all.push(("08-usbctrl-detach-0", sent(&mut c).0));

    for (step, got) in all {
        assert_eq!(got, golden(step), "step {step}");
    }

    // 10 on a fresh VM (devid 0 again): version=1
    let Some(vm2) = require_or_skip("xl_golden_sequences v1") else {
        return;
    };
    let mut c = conn(vm2.qmp_path(), style);
    c.add_controller(0, &resolve_controller(1, 0, None).unwrap())
        .unwrap();
    assert_eq!(sent(&mut c).0, golden("10-usbctrl-attach-v1"));
}

#[test]
fn typed_style_differs_from_xl417_only_in_number_types() {
    let Some(vm) = require_or_skip("typed_style") else {
        return;
    };
    let mut c = conn(vm.qmp_path(), ArgStyle::Typed);
    c.add_controller(1, &resolve_controller(3, 4, None).unwrap())
        .unwrap();
    c.add_device(1, 2, &DmDevice::HostAddr { bus: 1, addr: 3 })
        .unwrap_err();
    let (got, _) = sent(&mut c);
    let mut want = golden("02-usbctrl-attach-v3-4ports");
    want.extend(golden("04-usbdev-attach-ctrl1-port2").into_iter().skip(1));
    for v in &mut want {
        if let Some(args) = v.get_mut("arguments").and_then(Value::as_object_mut) {
            for key in ["p2", "p3", "hostbus", "hostaddr"] {
                if let Some(x) = args.get_mut(key) {
                    *x = Value::from(x.as_str().unwrap().parse::<u64>().unwrap());
                }
            }
        }
    }
    assert_eq!(got, want);
    // And the wire order is libxl's.
    let line = c.qmp().sent().last().unwrap().clone();
    assert_eq!(
        line,
        r#"{"execute":"device_add","id":3,"arguments":{"id":"xenusb-1-3","driver":"usb-host","bus":"xenusb-1.0","port":"2","hostbus":1,"hostaddr":3}}"#
    );
}
