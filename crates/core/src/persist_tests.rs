#![allow(clippy::unwrap_used, clippy::expect_used)]

use vusb_xenstore::XenstoreExt;
use vusb_xenstore::mem::{MemConn, MemStore};
use vusb_xlcfg::DevKind;

use super::*;

const UUID: &str = "2f4c4b7e-6b1d-4d3a-9a3e-0c1d2e3f4a5b";

fn guest(xs: &MemConn, domid: DomId, uuid: &str, ty: &str) {
    xs.write_str(
        TxId::NONE,
        &format!("/local/domain/{domid}/vm"),
        &format!("/vm/{uuid}"),
    )
    .unwrap();
    xs.write_str(TxId::NONE, &format!("/libxl/{domid}/type"), ty)
        .unwrap();
}

fn ctrl(domid: DomId, devid: u32, ctype: UsbCtrlType) -> Controller {
    Controller {
        domid,
        devid,
        ctype,
        version: 2,
        ports: 8,
    }
}

fn rec(ctrl: u32, port: u32, busid: &str) -> DevRecord {
    DevRecord {
        ctrl,
        port,
        busid: busid.to_owned(),
        hostbus: 3,
        hostaddr: 5,
        vendor: Some(0x046d),
        product: Some(0xc52b),
        serial: None,
    }
}

fn setup() -> (MemConn, tempfile::TempDir, HostPaths) {
    let xs = MemStore::new().connect(0);
    let tmp = tempfile::tempdir().unwrap();
    let paths = HostPaths::under(tmp.path());
    (xs, tmp, paths)
}

#[test]
fn records_survive_a_new_domid() {
    let (xs, _tmp, paths) = setup();
    guest(&xs, 5, UUID, "hvm");
    record_ctrl(&xs, &paths, 5, &ctrl(5, 0, UsbCtrlType::DeviceModel)).unwrap();
    record_dev(&xs, &paths, 5, &rec(0, 1, "3-1.2")).unwrap();

    // The guest is destroyed and re-created as domain 9 with the same uuid.
    guest(&xs, 9, UUID, "hvm");
    let saved = load_domain(&xs, &paths, 9).unwrap().unwrap();
    assert_eq!(saved.uuid, UUID);
    assert_eq!(saved.domid, Some(5));
    assert_eq!(saved.config.guest_type, GuestType::Hvm);
    assert_eq!(saved.config.ctrls.len(), 1);
    assert_eq!(saved.config.ctrls[0].devid, 0);
    assert_eq!(saved.config.ctrls[0].spec.kind, CtrlKind::DeviceModel);
    assert_eq!(saved.config.ctrls[0].spec.ports, Some(8));
    let d = &saved.config.devs[0].spec;
    assert_eq!(d.kind, DevKind::HostDev);
    assert_eq!((d.controller, d.port), (Some(0), Some(1)));
    assert_eq!((d.hostbus, d.hostaddr), (Some(3), Some(5)));
    assert_eq!(d.busid.as_deref(), Some("3-1.2"));
    assert_eq!(d.vendor, Some(0x046d));
}

#[test]
fn file_has_the_documented_shape_and_no_leftovers() {
    let (xs, _tmp, paths) = setup();
    guest(&xs, 5, UUID, "pv");
    record_ctrl(&xs, &paths, 5, &ctrl(5, 0, UsbCtrlType::Pv)).unwrap();
    record_dev(&xs, &paths, 5, &rec(0, 1, "3-1.2")).unwrap();
    let text = std::fs::read_to_string(file_path(&paths, UUID)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["vusb"], json!({"format": 1, "uuid": UUID, "domid": 5}));
    assert_eq!(v["c_info"], json!({"type": "pv"}));
    assert_eq!(
        v["usbctrls"],
        json!([{"type": "pv", "devid": 0, "version": 2, "ports": 8}])
    );
    assert_eq!(
        v["usbdevs"],
        json!([{"ctrl": 0, "port": 1, "type.hostdev": {"hostbus": 3, "hostaddr": 5},
                "vusb": {"busid": "3-1.2", "vendor": "046d", "product": "c52b"}}])
    );
    let names: Vec<String> = std::fs::read_dir(dir(&paths))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
}

#[test]
fn replace_and_forget() {
    let (xs, _tmp, paths) = setup();
    guest(&xs, 5, UUID, "pv");
    record_ctrl(&xs, &paths, 5, &ctrl(5, 0, UsbCtrlType::Pv)).unwrap();
    record_ctrl(&xs, &paths, 5, &ctrl(5, 1, UsbCtrlType::Qusb)).unwrap();
    record_ctrl(&xs, &paths, 5, &ctrl(5, 1, UsbCtrlType::Pv)).unwrap();
    record_dev(&xs, &paths, 5, &rec(0, 1, "3-1.2")).unwrap();
    record_dev(&xs, &paths, 5, &rec(1, 2, "3-1.3")).unwrap();
    // The same device moved to another port: one entry, the new place.
    record_dev(&xs, &paths, 5, &rec(0, 4, "3-1.2")).unwrap();
    let cfg = load(&paths, UUID).unwrap().unwrap().config;
    assert_eq!(cfg.ctrls.len(), 2);
    assert_eq!(cfg.ctrls[1].spec.kind, CtrlKind::Pv);
    assert_eq!(cfg.devs.len(), 2);
    assert_eq!(cfg.devs[1].spec.port, Some(4));

    forget_dev(&xs, &paths, 5, 0, 4).unwrap();
    let cfg = load(&paths, UUID).unwrap().unwrap().config;
    assert_eq!(cfg.devs.len(), 1);
    assert_eq!(cfg.devs[0].spec.busid.as_deref(), Some("3-1.3"));

    forget_ctrl(&xs, &paths, 5, 1).unwrap();
    let cfg = load(&paths, UUID).unwrap().unwrap().config;
    assert_eq!(cfg.ctrls.iter().map(|c| c.devid).collect::<Vec<_>>(), [0]);
    assert!(
        cfg.devs.is_empty(),
        "devices of a removed controller go too"
    );
}

#[test]
fn no_uuid_no_record() {
    let (xs, _tmp, paths) = setup();
    record_ctrl(&xs, &paths, 7, &ctrl(7, 0, UsbCtrlType::Pv)).unwrap();
    assert!(!dir(&paths).exists() || std::fs::read_dir(dir(&paths)).unwrap().count() == 0);
    assert_eq!(load_domain(&xs, &paths, 7).unwrap(), None);
}

#[test]
fn newer_or_foreign_files_are_refused() {
    let (_xs, _tmp, paths) = setup();
    std::fs::create_dir_all(dir(&paths)).unwrap();
    let path = file_path(&paths, UUID);
    std::fs::write(
        &path,
        format!(r#"{{"vusb":{{"format":2,"uuid":"{UUID}"}}}}"#),
    )
    .unwrap();
    let e = load(&paths, UUID).unwrap_err();
    assert!(e.to_string().contains("format 2 is newer"), "{e}");
    std::fs::write(&path, r#"{"vusb":{"format":1,"uuid":"other"}}"#).unwrap();
    assert!(matches!(
        load(&paths, UUID),
        Err(Error::SavedConfigMalformed { .. })
    ));
    std::fs::write(&path, "{").unwrap();
    assert!(matches!(
        load(&paths, UUID),
        Err(Error::SavedConfigMalformed { .. })
    ));
    std::fs::write(
        &path,
        format!(r#"{{"vusb":{{"format":1,"uuid":"{UUID}"}},"usbdevs":[{{"ctrl":"x"}}]}}"#),
    )
    .unwrap();
    let e = load(&paths, UUID).unwrap_err();
    assert!(e.to_string().contains("usbdevs[0].ctrl"), "{e}");
    remove(&paths, UUID).unwrap();
    assert_eq!(load(&paths, UUID).unwrap(), None);
    remove(&paths, UUID).unwrap();
}

#[test]
fn concurrent_updates_lose_nothing() {
    let (xs, _tmp, paths) = setup();
    guest(&xs, 5, UUID, "pv");
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (xs, paths) = (&xs, &paths);
            s.spawn(move || {
                for i in 0..10u32 {
                    let port = t * 10 + i + 1;
                    record_dev(xs, paths, 5, &rec(0, port, &format!("1-{port}"))).unwrap();
                }
            });
        }
    });
    let cfg = load(&paths, UUID).unwrap().unwrap().config;
    assert_eq!(cfg.devs.len(), 40);
}
