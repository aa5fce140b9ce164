//! The step sequences played with xl and vusb.

/// What is expected of vusb at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Same as xl.
    Same,
    /// xl crashes here (a libxl bug); vusb must exit 1 with an error and
    /// change nothing.
    XlCrashes,
    /// xl accepts input it should refuse (a libxl bug, e.g. C1: a port
    /// beyond the controller); vusb must exit 1 and change nothing.
    XlAcceptsVusbRefuses,
    /// xl fails where it should not (a libxl bug, e.g. U1/U2 after an
    /// unplug); vusb must succeed. The hosts differ afterwards.
    XlFailsVusbSucceeds,
}

/// One step: name, arguments (as typed after `xl`), expectation.
/// Arguments `!unplug <busid>` are not a command: the device is unplugged
/// from both hosts' sysfs ([`FakeHost::unplug`]).
pub type Step = (&'static str, &'static str, Expect);

/// The golden `pv` scenario (domain 1: PV, no device model).
pub const PV_SCENARIO: &[Step] = &[
    ("01-usb-list-empty", "usb-list 1", Expect::Same),
    (
        "02-usbctrl-attach-pv-v2-4ports",
        "usbctrl-attach 1 type=pv version=2 ports=4",
        Expect::Same,
    ),
    ("03-usb-list-ctrl", "usb-list 1", Expect::Same),
    (
        "04-usbdev-attach-auto-3intf",
        "usbdev-attach 1 hostbus=1 hostaddr=3",
        Expect::Same,
    ),
    (
        "05-usbdev-attach-ctrl0-port3",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=3",
        Expect::Same,
    ),
    ("06-usb-list-2dev", "usb-list 1", Expect::Same),
    ("07-usbdev-detach-0-1", "usbdev-detach 1 0 1", Expect::Same),
    (
        "08-usbctrl-detach-with-dev",
        "usbctrl-detach 1 0",
        Expect::Same,
    ),
    ("09-usb-list-after", "usb-list 1", Expect::Same),
    ("10-usbctrl-attach-auto", "usbctrl-attach 1", Expect::Same),
    ("11-usbctrl-detach-auto", "usbctrl-detach 1 0", Expect::Same),
    (
        "12-usbdev-attach-no-ctrl",
        "usbdev-attach 1 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("13-usb-list-implicit-ctrl", "usb-list 1", Expect::Same),
    (
        "14-err-usbdev-attach-already",
        "usbdev-attach 1 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "15-err-usbdev-attach-hub",
        "usbdev-attach 1 hostbus=1 hostaddr=1",
        Expect::Same,
    ),
    (
        "16-err-usbdev-attach-nodev",
        "usbdev-attach 1 hostbus=9 hostaddr=9",
        Expect::Same,
    ),
    (
        "17-err-usbdev-attach-port-in-use",
        "usbdev-attach 1 hostbus=1 hostaddr=3 controller=0 port=1",
        Expect::Same,
    ),
    (
        "18-err-usbctrl-attach-pv-v3",
        "usbctrl-attach 1 type=pv version=3",
        Expect::Same,
    ),
    (
        "19-err-usbctrl-attach-qusb-no-dm",
        "usbctrl-attach 1 type=qusb",
        Expect::Same,
    ),
    (
        "20-err-usbdev-detach-unknown",
        "usbdev-detach 1 5 1",
        Expect::XlCrashes,
    ),
    (
        "21-err-usbctrl-detach-unknown",
        "usbctrl-detach 1 7",
        Expect::Same,
    ),
    (
        "22-usbctrl-detach-implicit",
        "usbctrl-detach 1 0",
        Expect::Same,
    ),
];

/// The golden `qusb` scenario (domain 2: PV with a QEMU backend).
pub const QUSB_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-qusb-v1-2ports",
        "usbctrl-attach 2 type=qusb version=1 ports=2",
        Expect::Same,
    ),
    (
        "02-usbdev-attach",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("03-usb-list", "usb-list 2", Expect::Same),
    ("04-usbdev-detach", "usbdev-detach 2 0 1", Expect::Same),
    ("05-usbctrl-detach", "usbctrl-detach 2 0", Expect::Same),
    (
        "06-usbctrl-attach-auto-pvqemu",
        "usbctrl-attach 2",
        Expect::Same,
    ),
    ("07-usb-list-auto", "usb-list 2", Expect::Same),
    ("08-usbctrl-detach-auto", "usbctrl-detach 2 0", Expect::Same),
];

/// The golden `devicemodel` scenario (domain 3: HVM, fake QMP device model).
pub const DEVICEMODEL_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-auto-hvm",
        "usbctrl-attach 3",
        Expect::Same,
    ),
    (
        "02-usbctrl-attach-v3-4ports",
        "usbctrl-attach 3 version=3 ports=4",
        Expect::Same,
    ),
    (
        "03-usbdev-attach-auto",
        "usbdev-attach 3 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "04-usbdev-attach-ctrl1-port2",
        "usbdev-attach 3 hostbus=1 hostaddr=3 controller=1 port=2",
        Expect::Same,
    ),
    ("05-usb-list", "usb-list 3", Expect::Same),
    ("06-usbdev-detach-0-1", "usbdev-detach 3 0 1", Expect::Same),
    (
        "07-usbctrl-detach-1-with-dev",
        "usbctrl-detach 3 1",
        Expect::Same,
    ),
    ("08-usbctrl-detach-0", "usbctrl-detach 3 0", Expect::Same),
    (
        "09-err-usbctrl-attach-v1-4ports",
        "usbctrl-attach 3 version=1 ports=4",
        Expect::Same,
    ),
    (
        "10-usbctrl-attach-v1",
        "usbctrl-attach 3 version=1",
        Expect::Same,
    ),
    ("11-usb-list-v1", "usb-list 3", Expect::Same),
];

/// Steps of our own: both guests at once, names instead of domids, two
/// controllers, a device moving between guests, version 1 pv.
pub const EXTRA_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-by-name",
        "usbctrl-attach guest1 type=pv version=1 ports=2",
        Expect::Same,
    ),
    (
        "02-usbctrl-attach-qusb-v2",
        "usbctrl-attach 2 type=qusb version=2 ports=8",
        Expect::Same,
    ),
    (
        "03-usbctrl-attach-second-pv",
        "usbctrl-attach 1 type=pv ports=3",
        Expect::Same,
    ),
    (
        "04-usbdev-attach-ctrl1",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=1 port=2",
        Expect::Same,
    ),
    (
        "05-usbdev-attach-qusb",
        "usbdev-attach guest2 hostbus=1 hostaddr=3",
        Expect::Same,
    ),
    ("06-usb-list-1", "usb-list guest1", Expect::Same),
    ("07-usb-list-2", "usb-list 2", Expect::Same),
    (
        "08-err-attach-elsewhere",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    (
        "09-usbdev-detach-1-1-2",
        "usbdev-detach 1 1 2",
        Expect::Same,
    ),
    (
        "10-usbdev-attach-moved",
        "usbdev-attach 2 hostbus=1 hostaddr=2",
        Expect::Same,
    ),
    ("11-usb-list-2-moved", "usb-list 2", Expect::Same),
    (
        "12-usbctrl-detach-qusb-with-devs",
        "usbctrl-detach 2 0",
        Expect::Same,
    ),
    ("13-usbctrl-detach-1-0", "usbctrl-detach 1 0", Expect::Same),
    ("14-usbctrl-detach-1-1", "usbctrl-detach 1 1", Expect::Same),
    ("15-usb-list-empty", "usb-list 1", Expect::Same),
];

/// Argument handling and refusals of our own (each must match xl:
/// stdout, exit status, nothing changed on refusal).
pub const ERRORS_SCENARIO: &[Step] = &[
    (
        "01-usbctrl-attach-unknown-name",
        "usbctrl-attach nosuchguest type=pv",
        Expect::Same,
    ),
    (
        "02-usbctrl-attach-too-many-ports",
        "usbctrl-attach 1 type=pv ports=32",
        Expect::Same,
    ),
    (
        "03-usbctrl-attach-bad-type",
        "usbctrl-attach 1 type=xhci",
        Expect::Same,
    ),
    (
        "04-usbctrl-attach-pv-v1-max-ports",
        "usbctrl-attach 1 type=pv version=1 ports=31",
        Expect::Same,
    ),
    (
        "05-usbdev-attach-port-without-ctrl",
        "usbdev-attach 1 hostbus=1 hostaddr=2 port=1",
        Expect::Same,
    ),
    (
        "06-usbdev-attach-unknown-ctrl",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=5",
        Expect::Same,
    ),
    (
        "07-usbdev-attach-ctrl-first-free",
        "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0",
        Expect::Same,
    ),
    (
        "08-usbdev-attach-hex-addr",
        "usbdev-attach 1 hostbus=0x1 hostaddr=0x3",
        Expect::Same,
    ),
    ("09-usb-list-extra-arg", "usb-list 1 2", Expect::Same),
    (
        "10-usbdev-detach-too-many-args",
        "usbdev-detach 1 0 1 2",
        Expect::Same,
    ),
    (
        "11-usbdev-detach-empty-port",
        "usbdev-detach 1 0 9",
        Expect::Same,
    ),
    ("12-usb-list", "usb-list 1", Expect::Same),
    (
        "13-usbctrl-detach-with-devs",
        "usbctrl-detach guest1 0",
        Expect::Same,
    ),
];

/// libxl bugs vusb fixes, one scenario each (the hosts differ after the
/// buggy step): C1 (port beyond the controller, negative port), N1 (a
/// devid, controller or port that is not a number is 0 for xl), U1/U2 (a
/// device unplugged while assigned blocks every later attach and its own
/// detach).
pub const BUG_SCENARIOS: &[(&str, &[Step])] = &[
    (
        "c1-port-beyond-count",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach-port-5-of-2",
                "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=5",
                Expect::XlAcceptsVusbRefuses,
            ),
        ],
    ),
    (
        "c1-negative-port",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach-port-minus-1",
                "usbdev-attach 1 hostbus=1 hostaddr=2 controller=0 port=-1",
                Expect::XlAcceptsVusbRefuses,
            ),
        ],
    ),
    (
        "n1-non-numeric-devid-controller-port",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach",
                "usbdev-attach 1 hostbus=1 hostaddr=2",
                Expect::Same,
            ),
            // xl's atoi makes each of these 0: controller 0 (and its
            // device) would be removed, port 0/1 emptied.
            (
                "03-usbdev-detach-controller-x",
                "usbdev-detach 1 x 1",
                Expect::XlAcceptsVusbRefuses,
            ),
            (
                "04-usbctrl-detach-nan",
                "usbctrl-detach 1 nan",
                Expect::XlAcceptsVusbRefuses,
            ),
        ],
    ),
    (
        "u1-u2-unplugged-while-assigned",
        &[
            (
                "01-usbctrl-attach",
                "usbctrl-attach 1 type=pv ports=2",
                Expect::Same,
            ),
            (
                "02-usbdev-attach",
                "usbdev-attach 1 hostbus=1 hostaddr=2",
                Expect::Same,
            ),
            ("03-unplug-1-1", "!unplug 1-1", Expect::Same),
            (
                "04-usbdev-attach-other-device",
                "usbdev-attach 1 hostbus=1 hostaddr=3",
                Expect::XlFailsVusbSucceeds,
            ),
            (
                "05-usbdev-detach-unplugged",
                "usbdev-detach 1 0 1",
                Expect::XlFailsVusbSucceeds,
            ),
        ],
    ),
];
