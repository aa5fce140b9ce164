//! Unit and component tests of the rules file, on the simulator's sysfs
//! fixture (plain files: `1-1` stick 0781:5567, `1-2` receiver 046d:c52b,
//! `1-3`, `1-4` generic 1234:0002 / 1234:0003).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn host() -> (tempfile::TempDir, HostPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::under(dir.path());
    vusb_sim::fixture::write_fixture(&paths.sysfs_root, 4).unwrap();
    (dir, paths)
}

fn new(dom: &str, args: &[&str]) -> NewRule {
    NewRule::from_args(dom, args).unwrap()
}

#[test]
fn add_list_remove_round_trip_and_ids_are_never_reused() {
    let (_d, paths) = host();
    let a = add(&paths, &new("guest1", &["vendor=0781", "product=5567"])).unwrap();
    assert_eq!(a.id, 1);
    assert_eq!(a.selector, "vendor=0781,product=5567");
    let b = add(
        &paths,
        &new("guest2", &["busid=1-2", "mode=required", "priority=7"]),
    )
    .unwrap();
    assert_eq!((b.id, b.mode, b.priority), (2, Mode::Required, 7));
    assert_eq!(b.follow, None);
    let f = add(&paths, &new("guest3", &["busid=1-3,follow=10"])).unwrap();
    assert_eq!(f.follow, Some(10));
    remove(&paths, f.id).unwrap();
    assert_eq!(load(&paths).unwrap().rules, vec![a.clone(), b.clone()]);
    assert_eq!(remove(&paths, 1).unwrap(), a);
    assert!(matches!(
        remove(&paths, 1),
        Err(RuleError::NoSuchRule { id: 1 })
    ));
    let c = add(&paths, &new("guest1", &["hostbus=1", "portpath=3"])).unwrap();
    assert_eq!(c.id, 4, "ids are not reused");
    let text = std::fs::read_to_string(file_path(&paths)).unwrap();
    assert!(text.contains("\"version\": 1"), "{text}");
}

#[test]
fn domids_and_unstable_selectors_are_refused_and_nothing_is_written() {
    let (_d, paths) = host();
    let e = add(&paths, &new("1", &["busid=1-1"])).unwrap_err();
    assert!(matches!(e, RuleError::DomidGiven { .. }), "{e}");
    assert!(e.to_string().contains("never by domid"), "{e}");
    for bad in [
        &["hostbus=1", "hostaddr=2"][..],
        &["busid=1-1", "controller=0"],
        &["busid=1-1", "port=1"],
        &["type=tablet"],
        &["vendor=0781"],
        &["serial=x"],
        &["portpath=3"],
        &["nonsense=1"],
        &[],
    ] {
        let e = add(&paths, &new("guest1", bad)).unwrap_err();
        assert!(
            matches!(e, RuleError::Unusable { .. } | RuleError::Selector { .. }),
            "{bad:?}: {e}"
        );
    }
    for (k, v) in [
        ("mode", "sometimes"),
        ("priority", "high"),
        ("priority", "5000"),
    ] {
        let e = NewRule::from_args("guest1", &[format!("{k}={v}")]).unwrap_err();
        assert!(matches!(e, RuleError::BadOption { .. }), "{e}");
    }
    assert!(!file_path(&paths).exists(), "no file written on refusals");
}

#[test]
fn a_rule_matching_two_devices_at_once_is_refused() {
    let (_d, paths) = host();
    let devs = paths.sysfs_root.join("bus/usb/devices");
    // Make 1-4 a twin of 1-3 (same vendor:product, no serial).
    std::fs::write(devs.join("1-4/idProduct"), "0002\n").unwrap();
    let e = add(&paths, &new("guest1", &["vendor=1234,product=0002"])).unwrap_err();
    match &e {
        RuleError::Ambiguous { busids, .. } => assert_eq!(busids, &["1-3", "1-4"]),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("2 devices at once"), "{e}");
    // A port names one of them.
    add(&paths, &new("guest1", &["busid=1-4"])).unwrap();
}

#[test]
fn duplicates_are_refused() {
    let (_d, paths) = host();
    add(&paths, &new("guest1", &["busid=1-1"])).unwrap();
    let e = add(&paths, &new("guest1", &["busid=1-1", "priority=3"])).unwrap_err();
    assert!(matches!(e, RuleError::Duplicate { id: 1, .. }), "{e}");
}

#[test]
fn another_version_is_refused_not_guessed() {
    let (_d, paths) = host();
    std::fs::create_dir_all(&paths.state_dir).unwrap();
    std::fs::write(
        file_path(&paths),
        r#"{"version": 2, "next_id": 1, "rules": []}"#,
    )
    .unwrap();
    let e = load(&paths).unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");
    assert!(add(&paths, &new("guest1", &["busid=1-1"])).is_err());
}

#[test]
fn concurrent_adds_lose_nothing() {
    let (_d, paths) = host();
    let threads: Vec<_> = (1..=4)
        .map(|i| {
            let paths = paths.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    add(&paths, &new(&format!("g{i}x{j}"), &["busid=1-1"])).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let set = load(&paths).unwrap();
    assert_eq!(set.rules.len(), 20);
    let mut ids: Vec<u32> = set.rules.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
}

#[test]
fn matching_and_reasons() {
    let (_d, paths) = host();
    let devices = vusb_host::discover(&paths.sysfs_root).unwrap();
    let spec = parse_selector("vendor=0781,product=5567").unwrap();
    let m: Vec<String> = matching(&spec, &devices)
        .iter()
        .map(|d| d.busid.to_string())
        .collect();
    assert_eq!(m, ["1-1"]);
    let other = devices.iter().find(|d| d.busid.as_str() == "1-2").unwrap();
    let why = reasons(&spec, other).join("; ");
    assert_eq!(why, "vendor is 046d, not 0781; product is c52b, not 5567");
    let root = devices.iter().find(|d| d.busid.as_str() == "usb1").unwrap();
    assert!(!matches(&spec, root));
    assert_eq!(reasons(&spec, root)[0], "a root hub");
}

#[test]
fn rules_from_a_config_file_replace_the_files_earlier_rules() {
    let (_d, paths) = host();
    let cfg = "name = \"guest1\"\nmemory = 512\nvusb_rules = [ \"vendor=0781,product=5567,mode=required\", \"busid=1-2,priority=2\" ]\n";
    let rules = from_config(cfg, "/etc/xen/guest1.cfg").unwrap().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].mode, Mode::Required);
    let first = install_config(&paths, "/etc/xen/guest1.cfg", &rules).unwrap();
    assert_eq!(first.len(), 2);
    add(&paths, &new("guest2", &["busid=1-3"])).unwrap();
    let again = install_config(&paths, "/etc/xen/guest1.cfg", &rules[..1]).unwrap();
    let set = load(&paths).unwrap();
    assert_eq!(set.rules.len(), 2, "{set:?}");
    assert_eq!(set.rules[1], again[0]);
    assert_eq!(
        from_config("name = \"g\"\n", "f").unwrap(),
        None,
        "no vusb_rules, nothing to do"
    );
    assert!(from_config("vusb_rules = [ \"busid=1-1\" ]\n", "f").is_err());
    assert!(from_config("name=\"g\"\nvusb_rules = \"busid=1-1\"\n", "f").is_err());
}
