//! Fuzz target for vusb-xlcfg: any bytes, read as vusb's CLI reads a
//! config file (lossy UTF-8), must parse or fail cleanly — never panic —
//! and what parses must survive the JSON round trip and the spec
//! Display/parse round trip.
#![no_main]

use vusb_xlcfg::json::{from_json, to_json};
use vusb_xlcfg::{parse_usb, parse_usbctrl_item, parse_usbdev_args, parse_usbdev_item};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((usb, _warnings)) = parse_usb(&text) {
        let json = to_json(&usb);
        let back = from_json(&json).expect("own JSON must load");
        assert_eq!(to_json(&back), json, "JSON round trip");
        for d in &usb.devs {
            let again = parse_usbdev_item(&d.spec.to_string()).expect("own spec must parse");
            assert_eq!(again, d.spec, "usbdev Display round trip");
        }
        for c in &usb.ctrls {
            let again = parse_usbctrl_item(&c.spec.to_string()).expect("own spec must parse");
            assert_eq!(again, c.spec, "usbctrl Display round trip");
        }
    }
    // The spec grammar on its own, as command-line arguments.
    let args: Vec<&str> = text.split('\0').collect();
    let _ = parse_usbdev_args(&args);
    let _ = parse_usbctrl_item(&text);
});
