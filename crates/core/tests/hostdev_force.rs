//! `usbdev-attach --force` reaches the host's assignability check: a device
//! whose filesystem the host has mounted is refused without it and let
//! through with it; a hub above that device is refused either way. On the
//! fixture host of `vusb_testsupport::sysfs::typical_host` (a mounted stick
//! at 1-2.1 behind the hub 1-2).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vusb_core::HostPaths;
use vusb_core::ops::hostdev::select_assignable;
use vusb_testsupport::sysfs::typical_host;
use vusb_xlcfg::UsbDevSpec;

fn by_busid(b: &str) -> UsbDevSpec {
    UsbDevSpec {
        busid: Some(b.to_owned()),
        ..UsbDevSpec::default()
    }
}

#[test]
fn force_lets_a_device_in_use_through_but_never_a_hub() {
    let t = typical_host().unwrap();
    let paths = HostPaths::under(t.base());
    let refused = select_assignable(&paths, &by_busid("1-2.1"), false).unwrap_err();
    assert!(
        matches!(refused, vusb_core::Error::NotAssignable { .. }),
        "{refused:?}"
    );
    let dev = select_assignable(&paths, &by_busid("1-2.1"), true).unwrap();
    assert_eq!(dev.busid.as_str(), "1-2.1");
    assert!(select_assignable(&paths, &by_busid("1-2"), true).is_err());
    // A device the host does not use needs no force.
    assert!(select_assignable(&paths, &by_busid("1-1"), false).is_ok());
}
