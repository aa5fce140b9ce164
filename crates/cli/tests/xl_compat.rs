//! vusb against the real Xen 4.17 `xl`: every step of the recorded golden
//! scenarios (pv and qusb) and of our own scenario runs with `xl` on one
//! fake host and with the built `vusb` on an identical one; the xenstore
//! trees (without `/vusb`), stdout, exit status and sysfs driver bindings
//! must be equal (libxl JSON differences are printed, not failed: libxl
//! leaves stale entries on detach). See `docs/compat-testing.md`.
//!
//! Two harness checks keep the comparison honest: `xl` against `xl` must
//! show no difference at all, and `xl` on our fake host must reproduce the
//! recorded goldens (stdout, exit status, store changes).
//!
//! Needs the real xenstored and xl (xen-utils-4.17), xenstore-utils and gcc:
//! under `CI=true` a missing component fails the tests; elsewhere they are
//! skipped with a printed reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use vusb_testsupport::fakehost::FakeHostConfig;
use vusb_testsupport::xlpeer::{self, Second, Step, StepReport};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn vusb() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vusb"))
}

/// Run a scenario, or skip (fail under CI) when the peer cannot run.
fn scenario(what: &str, steps: &[Step], second: Second) -> Option<Vec<StepReport>> {
    let why = if !xlpeer::xl_available() {
        "the real xl (xen-utils-4.17) is not installed".to_owned()
    } else {
        match xlpeer::run_scenario(&FakeHostConfig::default(), steps, &second) {
            Ok(r) => return Some(r),
            Err(e) => format!("the fake hosts could not run: {e}"),
        }
    };
    assert!(!ci(), "{what}: {why}");
    eprintln!("SKIP: {what}: {why}");
    None
}

/// Print every step's verdict and fail listing the steps that differ.
fn assert_all_pass(what: &str, reports: &[StepReport]) {
    let mut failed = Vec::new();
    for r in reports {
        let verdict = if r.diffs.is_empty() { "PASS" } else { "FAIL" };
        eprintln!("{what} {verdict} {} ({})", r.name, r.args);
        for d in &r.diffs {
            eprintln!("    {}", d.replace('\n', "\n    "));
        }
        for n in &r.notes {
            eprintln!("    note: {}", n.replace('\n', "\n    "));
        }
        if !r.diffs.is_empty() {
            failed.push(r.name);
        }
    }
    let passed = reports.len() - failed.len();
    eprintln!("{what}: {passed}/{} steps equal to xl", reports.len());
    assert!(
        failed.is_empty(),
        "{what}: steps differing from xl: {failed:?}"
    );
}

#[test]
fn harness_xl_against_xl_shows_no_difference() {
    let Some(reports) = scenario("xl vs xl (pv)", xlpeer::PV_SCENARIO, Second::Xl) else {
        return;
    };
    assert_eq!(reports.len(), xlpeer::PV_SCENARIO.len());
    assert_all_pass("xl vs xl (pv)", &reports);
    for r in &reports {
        assert!(r.notes.is_empty(), "{}: {:?}", r.name, r.notes);
    }
}

#[test]
fn harness_reproduces_the_recorded_xl_goldens() {
    for (name, steps) in [("pv", xlpeer::PV_SCENARIO), ("qusb", xlpeer::QUSB_SCENARIO)] {
        let Some(reports) = scenario(name, steps, Second::Xl) else {
            return;
        };
        let mut bad = Vec::new();
        for r in &reports {
            let d = xlpeer::check_against_golden(name, r).unwrap();
            if !d.is_empty() {
                eprintln!("{name} {}: {}", r.name, d.join("\n"));
                bad.push(r.name);
            }
        }
        assert!(
            bad.is_empty(),
            "{name}: steps not reproducing the golden: {bad:?}"
        );
    }
}

#[test]
fn pv_scenario_matches_xl() {
    if let Some(r) = scenario("pv", xlpeer::PV_SCENARIO, Second::Vusb(vusb())) {
        assert_all_pass("pv", &r);
    }
}

#[test]
fn qusb_scenario_matches_xl() {
    if let Some(r) = scenario("qusb", xlpeer::QUSB_SCENARIO, Second::Vusb(vusb())) {
        assert_all_pass("qusb", &r);
    }
}

#[test]
fn extra_scenario_matches_xl() {
    if let Some(r) = scenario("extra", xlpeer::EXTRA_SCENARIO, Second::Vusb(vusb())) {
        assert_all_pass("extra", &r);
    }
}

/// The guests' stored JSON written by the fake hosts (and `vusb sim`) is
/// what the real `xl create -n` prints for the same configuration.
#[test]
fn guest_json_equals_xl_create_dry_run() {
    use vusb_sim::layout::{DomainKind, GuestSpec, guest_json, uuid_of};
    use vusb_testsupport::fakehost::{FakeHost, require_or_skip};
    if !xlpeer::xl_available() {
        assert!(!ci(), "the real xl is not installed");
        eprintln!("SKIP: the real xl is not installed");
        return;
    }
    let Some(h) = require_or_skip("xl create -n", FakeHost::start(&FakeHostConfig::default()))
    else {
        return;
    };
    let root = h.root().to_str().unwrap().to_owned();
    for kind in [DomainKind::Pv, DomainKind::PvQemu, DomainKind::Hvm] {
        let g = GuestSpec::new(7, kind);
        let mut cfg = format!(
            "name = \"guest7\"\nuuid = \"{}\"\nmemory = 1024\nvcpus = 1\n",
            uuid_of(7)
        );
        match kind {
            DomainKind::Hvm => {
                cfg.push_str("type = \"hvm\"\ndevice_model_version = \"qemu-xen\"\n")
            }
            _ => cfg.push_str(&format!("type = \"pv\"\nkernel = \"{root}/vmlinuz\"\n")),
        }
        if kind == DomainKind::PvQemu {
            cfg.push_str(&format!(
                "disk = [ \"format=raw,vdev=xvda,access=rw,backendtype=qdisk,target={root}/disk.img\" ]\n"
            ));
        }
        let path = h.root().join(format!("guest-{}.cfg", kind.as_str()));
        std::fs::write(&path, cfg).unwrap();
        let out = xlpeer::run(
            &h,
            h.xl_command(&["create", "-n", path.to_str().unwrap()])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out.rc, 0, "{}", out.stderr);
        let ours = guest_json(&g, &format!("{root}/vmlinuz"), &format!("{root}/disk.img"));
        assert_eq!(format!("{}\0", out.stdout), ours, "{kind:?}");
    }
}

fn devicemodel_config() -> FakeHostConfig {
    use vusb_sim::layout::{DomainKind, GuestSpec};
    let mut cfg = FakeHostConfig::default();
    cfg.domains.push(GuestSpec::new(3, DomainKind::Hvm));
    cfg
}

/// HVM guest with a (fake) QEMU: the QMP commands must be equal too.
#[test]
fn devicemodel_scenario_matches_xl() {
    let steps = xlpeer::DEVICEMODEL_SCENARIO;
    let r = match xlpeer::run_scenario(&devicemodel_config(), steps, &Second::Vusb(vusb())) {
        Ok(r) => r,
        Err(e) if !ci() && !xlpeer::xl_available() => {
            eprintln!("SKIP: devicemodel: {e}");
            return;
        }
        Err(e) => panic!("devicemodel: the fake hosts could not run: {e}"),
    };
    assert_all_pass("devicemodel", &r);
}

#[test]
fn harness_reproduces_the_recorded_devicemodel_goldens() {
    if !xlpeer::xl_available() {
        assert!(!ci(), "the real xl is not installed");
        eprintln!("SKIP: the real xl is not installed");
        return;
    }
    let reports = xlpeer::run_scenario(
        &devicemodel_config(),
        xlpeer::DEVICEMODEL_SCENARIO,
        &Second::Xl,
    )
    .unwrap();
    let mut bad = Vec::new();
    for r in &reports {
        assert!(
            r.diffs.is_empty(),
            "xl vs xl differs at {}: {:?}",
            r.name,
            r.diffs
        );
        let d = xlpeer::check_against_golden("devicemodel", r).unwrap();
        if !d.is_empty() {
            eprintln!("devicemodel {}: {}", r.name, d.join("\n"));
            bad.push(r.name);
        }
    }
    assert!(
        bad.is_empty(),
        "devicemodel: steps not reproducing the golden: {bad:?}"
    );
}

/// libxl bugs vusb fixes (reference §10.2 C1, U1, U2): where xl accepts
/// what it should refuse, vusb refuses and changes nothing; where xl fails
/// after an unplug, vusb succeeds.
#[test]
fn libxl_bugs_are_fixed() {
    let mut failed = Vec::new();
    for (name, steps) in xlpeer::BUG_SCENARIOS {
        let Some(r) = scenario(name, steps, Second::Vusb(vusb())) else {
            return;
        };
        for s in &r {
            eprintln!(
                "{name} {} {}",
                if s.diffs.is_empty() { "PASS" } else { "FAIL" },
                s.name
            );
            for d in s.diffs.iter().chain(&s.notes) {
                eprintln!("    {}", d.replace('\n', "\n    "));
            }
            if !s.diffs.is_empty() {
                failed.push(format!("{name}/{}", s.name));
            }
        }
    }
    assert!(failed.is_empty(), "steps failing: {failed:?}");
}

#[test]
fn errors_scenario_matches_xl() {
    if let Some(r) = scenario("errors", xlpeer::ERRORS_SCENARIO, Second::Vusb(vusb())) {
        assert_all_pass("errors", &r);
    }
}
