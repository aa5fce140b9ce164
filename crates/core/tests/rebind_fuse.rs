//! Driver rebinding against the kernel-like sysfs over FUSE
//! (`vusb_testsupport::fusesys`) with the in-memory xenstore: round trips,
//! libxl's order, rollback under injected failures, restoring from the
//! driver memory alone (also memory written the way xl writes it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vusb_core::{driver_memory, rebind};
use vusb_host::BusId;
use vusb_testsupport::fusesys::{self, FuseSys};
use vusb_testsupport::sysfs::{DeviceSpec, IntfSpec, typical_host};
use vusb_xenstore::mem::MemStore;
use vusb_xenstore::{TxId, XenstoreExt};

fn setup() -> Option<(vusb_testsupport::sysfs::SysfsTree, FuseSys)> {
    if !fusesys::available() {
        return None;
    }
    let t = typical_host().unwrap();
    t.driver("usbback").unwrap();
    // A device with one interface bound and one without a driver.
    t.device(
        "1-3",
        &DeviceSpec::new(5, 0x0403, 0x6001)
            .intf(IntfSpec::new(0xff, Some("ftdi_sio")))
            .intf(IntfSpec::new(0xff, None)),
    )
    .unwrap();
    let fs = FuseSys::mount(&t.root()).unwrap();
    Some((t, fs))
}

fn busid(s: &str) -> BusId {
    BusId::parse(s).unwrap()
}

#[test]
fn fuse_sysfs_binds_like_the_kernel() {
    let Some((_t, fs)) = setup() else { return };
    let root = fs.root();
    let write = |p: &str, v: &str| std::fs::write(root.join(p), v).map_err(|e| e.raw_os_error());
    assert_eq!(
        write("bus/usb/drivers/usbback/bind", "9-9:1.0"),
        Err(Some(libc::ENODEV))
    );
    assert_eq!(
        write("bus/usb/drivers/usbback/bind", "1-1:1.0"),
        Err(Some(libc::EBUSY))
    );
    assert_eq!(
        write("bus/usb/drivers/usbback/unbind", "1-1:1.0"),
        Err(Some(libc::ENODEV))
    );
    write("bus/usb/devices/1-1:1.0/driver/unbind", "1-1:1.0").unwrap();
    assert!(std::fs::symlink_metadata(root.join("bus/usb/devices/1-1:1.0/driver")).is_err());
    assert!(std::fs::symlink_metadata(root.join("bus/usb/drivers/usbhid/1-1:1.0")).is_err());
    write("bus/usb/drivers/usbback/bind", "1-1:1.0").unwrap();
    let link = std::fs::read_link(root.join("bus/usb/devices/1-1:1.0/driver")).unwrap();
    assert!(link.ends_with("bus/usb/drivers/usbback"), "{link:?}");
    // The link resolves inside the mount, as on a kernel.
    assert!(root.join("bus/usb/devices/1-1:1.0/driver/unbind").exists());
    assert!(
        root.join("bus/usb/drivers/usbback/1-1:1.0/bInterfaceClass")
            .exists()
    );
    assert_eq!(
        vusb_host::bind::driver_of(&root, "1-1:1.0")
            .unwrap()
            .as_deref(),
        Some("usbback")
    );
}

#[test]
fn round_trip_in_libxl_order_with_libxl_memory() {
    let Some((_t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    let root = fs.root();
    rebind::assign(&xs, &root, &busid("1-1")).unwrap();
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbback"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbback"));
    assert_eq!(
        fs.log(),
        [
            "unbind usbhid 1-1:1.0",
            "bind usbback 1-1:1.0",
            "unbind usbhid 1-1:1.1",
            "bind usbback 1-1:1.1"
        ]
    );
    // Stored as seen from the real root, whatever the test root is.
    for intf in ["1-1@1_0", "1-1@1_1"] {
        let v = xs
            .read_opt(
                TxId::NONE,
                &format!("/libxl/usbback/1-1/{intf}/driver_path"),
            )
            .unwrap();
        assert_eq!(v.as_deref(), Some("/sys/bus/usb/drivers/usbhid"));
    }
    let back = rebind::restore(&xs, &root, &busid("1-1")).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbhid"));
    assert_eq!(
        xs.read_opt(TxId::NONE, "/libxl/usbback/1-1").unwrap(),
        None,
        "memory removed"
    );
}

#[test]
fn unbound_interfaces_go_to_usbback_and_back_to_none() {
    let Some((_t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    rebind::assign(&xs, &fs.root(), &busid("1-3")).unwrap();
    assert_eq!(fs.driver_of("1-3:1.1").as_deref(), Some("usbback"));
    assert_eq!(
        driver_memory::recall(&xs, &busid("1-3")).unwrap().unwrap(),
        [("1-3:1.0".to_owned(), "ftdi_sio".to_owned())]
    );
    rebind::restore(&xs, &fs.root(), &busid("1-3")).unwrap();
    assert_eq!(fs.driver_of("1-3:1.0").as_deref(), Some("ftdi_sio"));
    assert_eq!(fs.driver_of("1-3:1.1"), None);
}

#[test]
fn second_bind_failing_rolls_every_interface_back() {
    let Some((_t, fs)) = setup() else { return };
    fs.fail_bind("usbback", 2, libc::EIO);
    let store = MemStore::new();
    let xs = store.connect(0);
    let err = rebind::assign(&xs, &fs.root(), &busid("1-1")).unwrap_err();
    let chain = vusb_host::discover::error_chain(&err);
    assert!(
        chain.contains("binding interface 1-1:1.1 to driver usbback"),
        "{chain}"
    );
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbhid"));
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/1-1").unwrap(), None);
}

#[test]
fn failing_unbind_rolls_back_too() {
    let Some((_t, fs)) = setup() else { return };
    fs.fail_unbind("usbhid", 2, libc::EIO);
    let store = MemStore::new();
    let xs = store.connect(0);
    assert!(rebind::assign(&xs, &fs.root(), &busid("1-1")).is_err());
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbhid"));
}

#[test]
fn failed_rollback_keeps_the_memory_for_recovery() {
    let Some((_t, fs)) = setup() else { return };
    fs.fail_bind("usbback", 2, libc::EIO);
    fs.fail_bind("usbhid", 1, libc::EIO); // the rollback's first bind back
    let store = MemStore::new();
    let xs = store.connect(0);
    let err = rebind::assign(&xs, &fs.root(), &busid("1-1")).unwrap_err();
    assert!(
        matches!(err, rebind::Error::RollbackFailed { .. }),
        "{err:?}"
    );
    assert!(
        xs.read_opt(TxId::NONE, "/libxl/usbback/1-1/1-1@1_0/driver_path")
            .unwrap()
            .is_some()
    );
    // A later restore (usb-recover) finishes the job from the memory alone.
    rebind::restore(&xs, &fs.root(), &busid("1-1")).unwrap();
    assert_eq!(fs.driver_of("1-1:1.0").as_deref(), Some("usbhid"));
    assert_eq!(fs.driver_of("1-1:1.1").as_deref(), Some("usbhid"));
}

#[test]
fn restores_what_xl_left() {
    let Some((_t, fs)) = setup() else { return };
    // As libxl leaves it: entries only (no vusb device node first), the
    // interfaces on usbback.
    let root = fs.root();
    {
        let intf = "1-2.1:1.0";
        std::fs::write(
            root.join(format!("bus/usb/devices/{intf}/driver/unbind")),
            intf,
        )
        .unwrap();
        std::fs::write(root.join("bus/usb/drivers/usbback/bind"), intf).unwrap();
    }
    let store = MemStore::new();
    let xs = store.connect(0);
    xs.write_str(
        TxId::NONE,
        "/libxl/usbback/1-2_1/1-2_1@1_0/driver_path",
        "/sys/bus/usb/drivers/usb-storage",
    )
    .unwrap();
    assert_eq!(driver_memory::remembered_devices(&xs).unwrap(), ["1-2.1"]);
    rebind::restore(&xs, &root, &busid("1-2.1")).unwrap();
    assert_eq!(fs.driver_of("1-2.1:1.0").as_deref(), Some("usb-storage"));
}

#[test]
fn a_vanished_device_changes_nothing() {
    let Some((_t, fs)) = setup() else { return };
    let store = MemStore::new();
    let xs = store.connect(0);
    let err = rebind::assign(&xs, &fs.root(), &busid("1-9")).unwrap_err();
    assert_eq!(err.to_string(), "host USB device 1-9 is not present");
    assert!(fs.log().is_empty());
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/1-9").unwrap(), None);
}

#[test]
fn without_usbback_nothing_changes() {
    if !fusesys::available() {
        return;
    }
    let t = typical_host().unwrap();
    let fs = FuseSys::mount(&t.root()).unwrap();
    let store = MemStore::new();
    let xs = store.connect(0);
    let err = rebind::assign(&xs, &fs.root(), &busid("1-1")).unwrap_err();
    assert!(
        matches!(err, rebind::Error::UsbbackNotLoaded { .. }),
        "{err:?}"
    );
    assert!(fs.log().is_empty());
    assert_eq!(xs.read_opt(TxId::NONE, "/libxl/usbback/1-1").unwrap(), None);
}

/// Crash safety when no interface has a driver: the device's memory node
/// must exist before the first interface reaches usbback, or recovery
/// would not know to take it back. The FUSE sysfs holds the first bind to
/// usbback while the test looks at xenstore.
#[test]
fn driverless_device_is_marked_before_its_first_bind() {
    if !fusesys::available() {
        return;
    }
    let t = typical_host().unwrap();
    t.driver("usbback").unwrap();
    t.device(
        "1-4",
        &DeviceSpec::new(6, 0x1234, 0x5678)
            .intf(IntfSpec::new(0xff, None))
            .intf(IntfSpec::new(0xff, None)),
    )
    .unwrap();
    let fs = FuseSys::mount(&t.root()).unwrap();
    let store = MemStore::new();
    let xs = store.connect(0);
    fs.block_bind("usbback", 1);
    let root = fs.root();
    let worker = {
        let xs = store.connect(0);
        std::thread::spawn(move || rebind::assign(&xs, &root, &busid("1-4")))
    };
    assert!(
        fs.wait_blocked(std::time::Duration::from_secs(10)),
        "first bind never came"
    );
    assert_eq!(
        xs.read_opt(TxId::NONE, "/libxl/usbback/1-4")
            .unwrap()
            .as_deref(),
        Some(""),
        "no recovery marker while the first interface goes to usbback"
    );
    fs.release();
    worker.join().unwrap().unwrap();
    assert_eq!(fs.driver_of("1-4:1.0").as_deref(), Some("usbback"));
    assert_eq!(fs.driver_of("1-4:1.1").as_deref(), Some("usbback"));
}
