//! `type=pv` on a dom0 without the kernel usbback driver (upstream Linux
//! has none): vusb fails at once, naming the missing driver, and changes
//! nothing; `type=auto` picks qusb there, as libxl does. On the in-memory
//! store with the golden initial layout and the sysfs fixture without
//! `bus/usb/drivers/usbback`. (The real kernel case is in the real-Xen
//! tier, `crates/cli/tests/xenbed_pv.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ops_support;

use std::time::{Duration, Instant};

use ops_support::{SimHost, dump};
use vusb_core::domain;
use vusb_core::layout::UsbCtrlType;
use vusb_core::ops::usbctrl_attach::usbctrl_attach;
use vusb_sim::xenbus::DriverConfig;
use vusb_xenstore::{TxId, XenstoreExt};

#[test]
fn pv_without_usbback_fails_fast_and_names_the_driver() {
    let host = SimHost::from_golden("pv", false, DriverConfig::default());
    let env = host.env();
    let dom = domain::resolve(env.xs, "1").unwrap();
    let before = dump(&host.conn);
    let spec = vusb_xlcfg::parse_usbctrl_args(&["type=pv".to_owned()]).unwrap();
    let t = Instant::now();
    let err = usbctrl_attach(&env, &dom, &spec).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let msg = err.to_string();
    assert!(
        msg.contains("usbback") && msg.contains("bus/usb/drivers/usbback"),
        "{msg}"
    );
    assert_eq!(dump(&host.conn), before, "xenstore changed");
}

#[test]
fn auto_picks_qusb_without_usbback() {
    let host = SimHost::from_golden("qusb", false, DriverConfig::default());
    let env = host.env();
    let dom = domain::resolve(env.xs, "1").unwrap();
    // Guest 1's QEMU backend runs (xl started it at creation).
    for (p, v) in [
        ("/local/domain/1/image/device-model-pid", "4242"),
        ("/local/domain/0/device-model/1/backends/qusb", ""),
    ] {
        host.conn.write_str(TxId::NONE, p, v).unwrap();
    }
    let spec = vusb_xlcfg::parse_usbctrl_args::<String>(&[]).unwrap();
    let ctrl = usbctrl_attach(&env, &dom, &spec).unwrap();
    assert_eq!(ctrl.ctype, UsbCtrlType::Qusb);
}
