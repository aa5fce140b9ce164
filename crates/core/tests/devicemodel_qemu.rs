//! devicemodel controllers and devices against a real QEMU 7.2 (one VM per
//! test): every controller model, emulated devices, the usb-host forms,
//! QEMU's refusals, removal outcomes with and without a guest, and QEMU
//! dying mid-command. Fails under `CI=true` when QEMU cannot start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;
use vusb_core::devicemodel::{DmConn, DmDevice, EmulatedKind, Removal, resolve_controller};
use vusb_qmp::DeviceAdd;
use vusb_testsupport::qemu::{QemuOptions, QemuVm, require_or_skip, require_or_skip_with};

const T: Duration = Duration::from_secs(10);

fn connect(vm: &QemuVm) -> DmConn {
    DmConn::connect(vm.qmp_path(), T).expect("connect to QEMU")
}

fn add_ctrl(c: &mut DmConn, devid: u32, version: i64, ports: i64, model: Option<&str>) {
    c.add_controller(devid, &resolve_controller(version, ports, model).unwrap())
        .unwrap();
}

#[test]
fn every_controller_version_and_model_is_created() {
    let Some(vm) = require_or_skip("every_controller") else {
        return;
    };
    let mut c = connect(&vm);
    // (version, ports, model, driver, pci vendor:device, ports seen)
    type Case = (
        i64,
        i64,
        Option<&'static str>,
        &'static str,
        (u64, u64),
        u64,
    );
    let cases: [Case; 7] = [
        (1, 0, None, "piix3-usb-uhci", (0x8086, 0x7020), 2),
        (2, 0, None, "usb-ehci", (0x8086, 0x24cd), 6),
        (3, 4, None, "nec-usb-xhci", (0x1033, 0x0194), 4),
        (3, 15, None, "nec-usb-xhci", (0x1033, 0x0194), 15),
        (
            0,
            0,
            Some("piix4-uhci"),
            "piix4-usb-uhci",
            (0x8086, 0x7112),
            2,
        ),
        (0, 3, Some("qemu-xhci"), "qemu-xhci", (0x1b36, 0x000d), 3),
        (0, 0, Some("nec-xhci"), "nec-usb-xhci", (0x1033, 0x0194), 8),
    ];
    for (devid, (v, p, m, _, _, _)) in cases.iter().enumerate() {
        add_ctrl(&mut c, devid as u32, *v, *p, *m);
    }
    let peripherals = c.qmp().peripherals().unwrap();
    let pci = c.qmp().query_pci().unwrap();
    for (devid, (_, _, _, driver, ids, ports)) in cases.iter().enumerate() {
        let id = format!("xenusb-{devid}");
        let p = peripherals
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(p.driver, *driver);
        let f = pci.iter().find(|f| f.qdev_id == id).unwrap();
        assert_eq!((f.vendor, f.device), *ids, "{id}");
        if driver.contains("xhci") {
            let p2 = c
                .qmp()
                .qom_get(&format!("/machine/peripheral/{id}"), "p2")
                .unwrap();
            assert_eq!(p2, Value::from(*ports), "{id}");
        }
        // The last port exists, the one after it does not.
        let tab = DmDevice::Emulated(EmulatedKind::Tablet);
        c.add_device(devid as u32, *ports as u32, &tab).unwrap();
        let e = c
            .add_device(devid as u32, *ports as u32 + 1, &tab)
            .unwrap_err();
        assert!(
            e.qmp().qemu_desc().unwrap().contains("not found (in use?)"),
            "{e:?}"
        );
    }
}

#[test]
fn emulated_devices_attach_and_detach() {
    let Some(vm) = require_or_skip("emulated_devices") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 1, 0, None);
    add_ctrl(&mut c, 1, 2, 0, None);
    add_ctrl(&mut c, 2, 3, 4, None);
    let kinds = [
        EmulatedKind::Tablet,
        EmulatedKind::Mouse,
        EmulatedKind::Keyboard,
    ];
    for ctrl in 0..3 {
        for (i, k) in kinds.iter().enumerate() {
            let port = if ctrl == 0 {
                1 + (i as u32 % 2)
            } else {
                1 + i as u32
            };
            let id = c.add_device(ctrl, port, &DmDevice::Emulated(*k)).unwrap();
            let path = format!("/machine/peripheral/{id}");
            assert_eq!(
                c.qmp().qom_get(&path, "port").unwrap(),
                Value::from(port.to_string())
            );
            assert_eq!(
                c.qmp().qom_get(&path, "parent_bus").unwrap(),
                Value::from(format!("/machine/peripheral/xenusb-{ctrl}/xenusb-{ctrl}.0"))
            );
            assert_eq!(
                c.qmp().qom_get(&path, "attached").unwrap(),
                Value::Bool(true)
            );
            let t0 = Instant::now();
            assert_eq!(
                c.remove_device(&id, Duration::from_secs(2)).unwrap(),
                Removal::Removed
            );
            assert!(t0.elapsed() < Duration::from_secs(2));
            assert!(!c.is_present(&id).unwrap(), "{id} still there");
            // The port is free again.
            c.add_device(ctrl, port, &DmDevice::Emulated(*k)).unwrap();
            c.remove_device(&id, Duration::from_secs(2)).unwrap();
        }
    }
    assert_eq!(
        c.remove_device("xenusb-0-1-tablet", Duration::from_millis(100))
            .unwrap(),
        Removal::NotPresent
    );
}

#[test]
fn usb_host_by_bus_and_address_is_refused_by_qemu() {
    let Some(vm) = require_or_skip("usb_host_bus_addr") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 2, 0, None);
    let e = c
        .add_device(0, 1, &DmDevice::HostAddr { bus: 1, addr: 2 })
        .unwrap_err();
    assert_eq!(e.to_string(), "adding USB device xenusb-1-2 to QEMU");
    assert_eq!(
        e.qmp().qemu_desc(),
        Some("failed to find host usb device 1:2")
    );
    assert!(!c.is_present("xenusb-1-2").unwrap());
}

#[test]
fn usb_host_by_vendor_product_and_by_port_are_accepted_and_wait() {
    let Some(vm) = require_or_skip("usb_host_waiting_forms") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 3, 4, None);
    let by_ids = c
        .add_device(
            0,
            1,
            &DmDevice::HostIds {
                vendor: 0x1234,
                product: 0x5678,
            },
        )
        .unwrap();
    let by_port = c
        .add_device(
            0,
            2,
            &DmDevice::HostPort {
                bus: 3,
                path: "1.4".into(),
            },
        )
        .unwrap();
    for (id, prop, want) in [
        (&by_ids, "vendorid", Value::from(0x1234)),
        (&by_ids, "productid", Value::from(0x5678)),
        (&by_port, "hostport", Value::from("1.4")),
        (&by_port, "hostbus", Value::from(3)),
    ] {
        assert_eq!(
            c.qmp()
                .qom_get(&format!("/machine/peripheral/{id}"), prop)
                .unwrap(),
            want,
            "{id}.{prop}"
        );
        assert_eq!(
            c.qmp()
                .qom_get(&format!("/machine/peripheral/{id}"), "attached")
                .unwrap(),
            Value::Bool(false)
        );
    }
    // A waiting usb-host occupies its port.
    let e = c
        .add_device(0, 1, &DmDevice::Emulated(EmulatedKind::Tablet))
        .unwrap_err();
    assert_eq!(
        e.qmp().qemu_desc(),
        Some("usb port 1 (bus xenusb-0.0) not found (in use?)")
    );
    assert_eq!(
        c.remove_device(&by_ids, Duration::from_secs(2)).unwrap(),
        Removal::Removed
    );
    assert_eq!(
        c.remove_device(&by_port, Duration::from_secs(2)).unwrap(),
        Removal::Removed
    );
}

#[test]
fn port_occupied_bus_missing_and_speed_mismatch() {
    let Some(vm) = require_or_skip("qemu_refusals") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 2, 0, None);
    c.add_device(0, 3, &DmDevice::Emulated(EmulatedKind::Tablet))
        .unwrap();
    let e = c
        .add_device(0, 3, &DmDevice::Emulated(EmulatedKind::Mouse))
        .unwrap_err();
    assert_eq!(
        e.qmp().qemu_desc(),
        Some("usb port 3 (bus xenusb-0.0) not found (in use?)")
    );
    let e = c
        .add_device(7, 1, &DmDevice::Emulated(EmulatedKind::Mouse))
        .unwrap_err();
    assert_eq!(e.qmp().qemu_desc(), Some("Bus 'xenusb-7.0' not found"));
    let e = c
        .add_controller(0, &resolve_controller(3, 4, None).unwrap())
        .unwrap_err();
    assert_eq!(e.qmp().qemu_desc(), Some("Duplicate device ID 'xenusb-0'"));
    // A full-speed-only device on an EHCI without companions.
    let fs_kbd = DeviceAdd::new()
        .arg("driver", "usb-kbd")
        .arg("id", "fs-kbd")
        .arg("bus", "xenusb-0.0")
        .arg("port", "4")
        .arg("usb_version", 1);
    let e = c.qmp().device_add(&fs_kbd).unwrap_err();
    let desc = e.qemu_desc().unwrap();
    assert!(desc.starts_with("Warning: speed mismatch trying to attach usb device \"QEMU USB Keyboard\" (full speed) to bus \"xenusb-0.0\""), "{desc}");
}

#[test]
fn controller_removal_without_a_guest_is_reported_not_assumed() {
    let Some(vm) = require_or_skip("controller_removal_no_guest") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 3, 4, None);
    let t0 = Instant::now();
    assert_eq!(
        c.remove_controller(0, Duration::from_millis(300)).unwrap(),
        Removal::GuestDidNotRelease
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(c.is_present("xenusb-0").unwrap());
    // Asking again (QEMU: "already in the process of unplug") is the same outcome.
    assert_eq!(
        c.remove_controller(0, Duration::from_millis(100)).unwrap(),
        Removal::GuestDidNotRelease
    );
    assert_eq!(
        c.remove_controller(5, Duration::from_millis(100)).unwrap(),
        Removal::NotPresent
    );
}

#[test]
fn controller_removal_completes_when_the_guest_ejects() {
    let dir = tempfile::tempdir().unwrap();
    let opts = QemuOptions::with_ejector(dir.path()).unwrap();
    let Some(vm) = require_or_skip_with("controller_removal_ejector", &opts) else {
        return;
    };
    vm.wait_for_ejector(Duration::from_secs(60)).unwrap();
    let mut c = connect(&vm); // after: QEMU serves one QMP client at a time
    add_ctrl(&mut c, 0, 1, 0, None);
    add_ctrl(&mut c, 1, 3, 4, None); // xHCI: never sends DEVICE_DELETED
    add_ctrl(&mut c, 2, 2, 0, None);
    for devid in 0..3 {
        let t0 = Instant::now();
        assert_eq!(
            c.remove_controller(devid, Duration::from_secs(5)).unwrap(),
            Removal::Removed,
            "xenusb-{devid}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(
            !c.qmp()
                .query_pci()
                .unwrap()
                .iter()
                .any(|f| f.qdev_id == format!("xenusb-{devid}"))
        );
    }
}

#[test]
fn qemu_killed_mid_command_is_a_typed_error() {
    let Some(mut vm) = require_or_skip("qemu_killed") else {
        return;
    };
    let mut c = connect(&vm);
    add_ctrl(&mut c, 0, 2, 0, None);
    let pid = vm.pid();
    // Kill QEMU while vusb waits for the (never completing) controller unplug.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    });
    let e = c.remove_controller(0, Duration::from_secs(10)).unwrap_err();
    killer.join().unwrap();
    assert!(e.qmp().is_connection_lost(), "{e:?}");
    assert_eq!(e.to_string(), "removing USB controller xenusb-0 from QEMU");
    // Every later command fails the same way, without a panic.
    let e = c
        .add_device(0, 1, &DmDevice::Emulated(EmulatedKind::Tablet))
        .unwrap_err();
    assert!(e.qmp().is_connection_lost(), "{e:?}");
    vm.kill();
    let e = DmConn::connect(vm.qmp_path(), Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e.qmp(), vusb_qmp::Error::Connect { .. }), "{e:?}");
}

#[test]
fn domain_socket_path_and_one_connection_per_operation() {
    use vusb_core::HostPaths;
    use vusb_core::devicemodel::{
        add_domain_controller, add_domain_device, qmp_socket_path, remove_domain_controller,
        remove_domain_device,
    };
    let Some(vm) = require_or_skip("domain_operations") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::under(root.path());
    let sock = qmp_socket_path(&paths, 3);
    assert_eq!(sock, root.path().join("var/run/xen/qmp-libxl-3"));
    // Missing socket: a connection error naming the path.
    let e =
        add_domain_controller(&paths, 3, 0, &resolve_controller(2, 0, None).unwrap()).unwrap_err();
    assert!(
        matches!(e.qmp(), vusb_qmp::Error::Connect { path, .. } if *path == sock),
        "{e:?}"
    );
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(vm.qmp_path(), &sock).unwrap();
    let model = resolve_controller(3, 4, None).unwrap();
    assert_eq!(
        add_domain_controller(&paths, 3, 0, &model).unwrap(),
        "xenusb-0"
    );
    let tab = DmDevice::Emulated(EmulatedKind::Tablet);
    let id = add_domain_device(&paths, 3, 0, 2, &tab).unwrap();
    assert_eq!(
        remove_domain_device(&paths, 3, &id, Duration::from_secs(2)).unwrap(),
        Removal::Removed
    );
    assert_eq!(
        remove_domain_controller(&paths, 3, 0, Duration::from_millis(200)).unwrap(),
        Removal::GuestDidNotRelease
    );
    assert_eq!(
        remove_domain_controller(&paths, 3, 9, Duration::from_millis(200)).unwrap(),
        Removal::NotPresent
    );
}
