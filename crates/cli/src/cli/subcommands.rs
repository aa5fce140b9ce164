//! The subcommands of the description ([`super::command`]): arguments,
//! options and help texts of every command. For help, completions and the
//! man page only: the arguments after a command name are parsed by the
//! commands themselves (xl's rules).

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command, ValueHint, value_parser};

/// The selectors of a host device, shared by the help of usbdev-attach,
/// usbdev-detach and the man page.
const SELECTORS: &str = "\
Host device selectors (one way of naming the device; two at once are refused):
  hostbus=B hostaddr=A     xl's: bus and address (strtoul base 0: 0x0a, 010);
                           they change at every re-plug
  busid=B                  the kernel's name, e.g. busid=3-1.2 (usb-assignable-list)
  vendor=V product=P [serial=S]
                           idVendor/idProduct in hex (046d, 0x46d), optionally
                           the serial string; follows the device anywhere
  portpath=P               the connector: as usb-assignable-list prints it
                           (usb1-1.4, 0000:00:14.0-1.4) or a hub port chain
                           below hostbus=B's root hub (hostbus=1 portpath=1.4)";

const PLACEMENT: &str = "\
Placement (as xl):
  controller=C [port=P]    a controller of the domain (usb-list shows them) and
                           one of its ports; without them: the first free port,
                           or a new controller when none is free";

const XL_COMPAT: &str = "\
Arguments, output and exit status are xl 4.17's; errors print xl's message,
then a `vusb:` line with the reason and what to do.";

fn domain() -> Arg {
    Arg::new("domain")
        .value_name("DOMAIN")
        .required(true)
        .value_hint(ValueHint::Other)
        .help("Domain name or domid (with --qmp: a free label naming the VM)")
}

fn json() -> Arg {
    Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print JSON (docs/cli-json.md) instead of the table")
}

fn cmd(name: &'static str, about: &'static str) -> Command {
    Command::new(name).about(about).disable_help_flag(true).arg(
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::SetTrue)
            .help("Print this help"),
    )
}

/// The xl-compatible commands.
pub(super) fn xl_commands() -> Vec<Command> {
    vec![
        cmd(
            "usbctrl-attach",
            "Create a virtual USB controller for a domain",
        )
        .arg(domain())
        .arg(
            Arg::new("spec")
                .value_name("KEY=VALUE")
                .num_args(0..)
                .help("type=auto|pv|qusb|devicemodel, version=1|2|3, ports=N (1-31), model=M"),
        )
        .after_long_help(concat!(
            "Controller types: pv (dom0's usbback), qusb (QEMU's PVUSB backend),\n",
            "devicemodel (a controller emulated by the HVM guest's QEMU); auto picks\n",
            "one as libxl does. model= (vusb, devicemodel and --qmp): piix3-uhci,\n",
            "piix4-uhci, ehci, nec-xhci, qemu-xhci.\n\n",
            "Arguments, output and exit status are xl 4.17's; errors print xl's message,\n",
            "then a `vusb:` line with the reason and what to do."
        )),
        cmd(
            "usbctrl-detach",
            "Remove the virtual USB controller specified by <DevId> for a domain",
        )
        .arg(domain())
        .arg(
            Arg::new("devid")
                .value_name("DEVID")
                .required(true)
                .help("The controller's devid (usb-list shows it); its devices are detached first"),
        )
        .after_long_help(XL_COMPAT),
        cmd("usbdev-attach", "Attach a USB device to a domain")
            .arg(domain())
            .arg(
                Arg::new("spec")
                    .value_name("KEY=VALUE")
                    .num_args(1..)
                    .required(true)
                    .help("A host device selector, or type=tablet|mouse|keyboard; controller=, port="),
            )
            .arg(
                Arg::new("force")
                    .long("force")
                    .action(ArgAction::SetTrue)
                    .help("Attach a device the host is using (mounted, swap, held); never a hub"),
            )
            .after_long_help(const_format_attach()),
        cmd("usbdev-detach", "Detach a USB device from a domain")
            .arg(domain())
            .arg(
                Arg::new("target")
                    .value_name("CONTROLLER PORT | KEY=VALUE")
                    .num_args(1..)
                    .required(true)
                    .help("xl's controller and port, or any host device selector (also after an unplug)"),
            )
            .after_long_help(const_format_detach()),
        cmd(
            "usb-list",
            "List information about all USB controllers and devices for a domain",
        )
        .arg(domain())
        .arg(json())
        .after_long_help(concat!(
            "xl's table byte for byte (bus/device in hex); with --qmp the controller\n",
            "model is named too. Extra arguments: `Invalid arguments.`, exit 255 (as xl)."
        )),
    ]
}

fn const_format_attach() -> String {
    format!(
        "{SELECTORS}\n\n{PLACEMENT}\n\nEmulated devices (HVM guests with a devicemodel controller, and --qmp):\n  type=tablet|mouse|keyboard\n\nRefused, with the reason on a `vusb:` line: hubs, devices the host is using\n(without --force), devices assigned to another domain, unknown devices.\n\n{XL_COMPAT}"
    )
}

fn const_format_detach() -> String {
    format!(
        "xl's form: <DOMAIN> <CONTROLLER> <PORT> (atoi of both).\nvusb's form: <DOMAIN> followed by the selector the device was attached by;\nafter an unplug it is matched against vusb's records.\n\n{SELECTORS}\n\n{XL_COMPAT}"
    )
}

/// vusb's own commands.
pub(super) fn vusb_commands() -> Vec<Command> {
    vec![
        cmd(
            "usb-assignable-list",
            "List the host USB devices that may be given to a guest",
        )
        .arg(
            Arg::new("all")
                .short('a')
                .long("all")
                .action(ArgAction::SetTrue)
                .help("Also the other devices, with the reason they are not assignable"),
        )
        .arg(json())
        .after_long_help(
            "Columns: BusID (busid=), Bus.Addr (hostbus=/hostaddr=), Vendor:Product\n(vendor=/product=), Product. Works without xenstore (nothing is then known\nto be assigned).",
        ),
        cmd(
            "usb-recover",
            "Give devices that usbback still remembers but no domain holds back to their host drivers",
        ),
        cmd(
            "usb-release",
            "Remove every USB controller and device of a domain and give the devices back to the host",
        )
        .arg(domain()),
        cmd(
            "config-show",
            "Print the USB part of an xl config file as libxl's JSON",
        )
        .arg(
            Arg::new("file")
                .value_name("FILE")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .value_parser(value_parser!(OsString))
                .help("The config file (- for stdin; -- FILE for a file named like an option)"),
        ),
        cmd(
            "config-apply",
            "Attach the USB controllers and devices of a config file (or the saved configuration) to a running domain",
        )
        .arg(domain())
        .arg(
            Arg::new("file")
                .value_name("FILE|--saved")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .value_parser(value_parser!(OsString))
                .help("An xl config file, or --saved for what vusb saved for the domain"),
        ),
        cmd(
            "config-dump",
            "Print the USB configuration vusb saved for a domain, as JSON",
        )
        .arg(domain()),
        cmd("sim", "Run vusb on a simulated Xen host (no Xen needed)")
            .arg(
                Arg::new("action")
                    .value_name("run|start|stop|unplug|plug")
                    .value_parser(["run", "start", "stop", "unplug", "plug"])
                    .help("run (default): a short attach/list/detach session; start DIR: keep a host running and print its environment; stop DIR; unplug DIR BUSID, plug DIR BUSID [--bus N]: hot-plug, announced to a daemon on DIR/uevent.sock"),
            )
            .arg(
                Arg::new("dir")
                    .value_name("DIR")
                    .value_hint(ValueHint::DirPath)
                    .value_parser(value_parser!(OsString))
                    .help("The simulated host's directory (start, stop)"),
            )
            .after_long_help(
                "eval \"$(vusb sim start /tmp/vsim)\" points every other vusb command at the\nsimulated host; vusb sim stop /tmp/vsim ends it (docs/simulator.md).",
            ),
        cmd(
            "usb-rule-add",
            "Store an assignment rule for vusb daemon: a device (by a stable identity) belongs to a domain (by name or uuid)",
        )
        .arg(
            Arg::new("rule")
                .value_name("DOMAIN SELECTOR... [mode=auto|required] [priority=N] [follow=SECONDS] | --config FILE")
                .num_args(1..)
                .help("The domain's name or uuid (never a domid), then busid=, vendor=/product=[/serial=], hostbus=+portpath=, physport=, with-interface=/without-interface=; or a guest config's vusb_rules"),
        )
        .after_long_help("Rules are kept in the state directory (rules.json); docs/daemon.md."),
        cmd("usb-rule-list", "List the assignment rules").arg(json()),
        cmd("usb-rule-remove", "Remove an assignment rule").arg(
            Arg::new("id")
                .value_name("ID")
                .required(true)
                .help("The rule's id (usb-rule-list)"),
        ),
        cmd(
            "usb-rule-explain",
            "Show which host devices a rule matches and why, and what the daemon does with it",
        )
        .arg(
            Arg::new("id")
                .value_name("ID")
                .required(true)
                .help("The rule's id (usb-rule-list)"),
        )
        .arg(json()),
        cmd(
            "daemon",
            "Run the rule daemon in the foreground (re-attach on re-plug, release on domain death)",
        )
        .arg(
            Arg::new("uevents")
                .long("uevents")
                .value_name("netlink|none|unix:PATH")
                .help("Where USB hot-plug events come from (default netlink: the kernel)"),
        )
        .after_long_help("systemd: vusbd.service (Type=notify); docs/daemon.md."),
        cmd(
            "daemon-status",
            "Show the running daemon's rules, matched devices, recent decisions and errors",
        )
        .arg(json()),
        cmd("help", "Print the help of vusb or of a command").arg(
            Arg::new("command")
                .value_name("COMMAND")
                .help("The command (any unambiguous prefix)"),
        ),
        cmd(
            "completions",
            "Print a completion script (commands, options, domain names, host devices)",
        )
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(["bash", "zsh", "fish"])
                .help("bash, zsh or fish"),
        )
        .after_long_help(
            "bash: vusb completions bash > /etc/bash_completion.d/vusb\nzsh:  vusb completions zsh > \"${fpath[1]}/_vusb\"\nfish: vusb completions fish > ~/.config/fish/completions/vusb.fish\nThe Debian package installs all three.",
        ),
        cmd("manpage", "Print the man page vusb(1) (roff)"),
        Command::new("__complete")
            .hide(true)
            .about("Dynamic completion values, for the completion scripts")
            .arg(Arg::new("what").value_parser(["domains", "devices", "selectors"])),
    ]
}
