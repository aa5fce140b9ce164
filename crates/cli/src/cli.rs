//! The one description of vusb's command line, as a clap [`Command`]: the
//! source of `vusb --help`, `vusb help [CMD]`, `vusb CMD --help`, the shell
//! completions (`vusb completions SHELL`) and the man page (`vusb
//! manpage`), and the parser of the global options.
//!
//! The arguments *after* a command name are not parsed by clap: the xl
//! commands keep xl's own rules (getopt in POSIX mode, `KEY=VALUE` words,
//! `atoi`, xl's messages and exit codes, `commands/xl_args.rs`), which clap
//! cannot express byte for byte. The subcommands below describe those
//! arguments for help, completion and the man page only.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command, ValueHint, value_parser};

/// The xl-compatible commands (also available with `--qmp`).
pub const XL_COMMANDS: &[&str] = &[
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-list",
];

/// Every visible command, in help order (a unit test checks it against
/// the description).
pub const ALL_COMMANDS: &[&str] = &[
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-list",
    "usb-assignable-list",
    "usb-recover",
    "usb-release",
    "config-show",
    "config-apply",
    "config-dump",
    "sim",
    "usb-rule-add",
    "usb-rule-list",
    "usb-rule-remove",
    "usb-rule-explain",
    "daemon",
    "daemon-status",
    "help",
    "completions",
    "manpage",
];

/// The global options' spellings (`--qmp`, `-v`...), for suggestions.
pub fn global_option_names() -> Vec<String> {
    let mut names = Vec::new();
    for a in global_args() {
        if let Some(l) = a.get_long() {
            names.push(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            names.push(format!("-{s}"));
        }
    }
    names
}

/// vusb's version line: version, commit, and what it is compatible with.
pub fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("VUSB_GIT_COMMIT"),
        ")\n",
        "compatible with: Xen 4.17 (xl's USB commands, libxl's xenstore layout,\n",
        "  usbback driver memory and stored domain configuration),\n",
        "  QEMU 7.2 (QMP: devicemodel controllers and plain QEMU/KVM VMs)"
    )
}

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

/// The global options (also parsed with this description).
fn global_args() -> Vec<Arg> {
    vec![
        Arg::new("verbose")
            .short('v')
            .action(ArgAction::Count)
            .global(true)
            .help("More logging on stderr (-v info, -vv debug, -vvv trace)"),
        Arg::new("dry-run")
            .short('N')
            .long("dry-run")
            .action(ArgAction::SetTrue)
            .help("Dry run (xl's -N): not supported yet; refused, nothing is changed"),
        Arg::new("sysfs-root")
            .long("sysfs-root")
            .value_name("DIR")
            .value_hint(ValueHint::DirPath)
            .value_parser(value_parser!(PathBuf))
            .help("sysfs root (VUSB_SYSFS_ROOT, default /sys)"),
        Arg::new("state-dir")
            .long("state-dir")
            .value_name("DIR")
            .value_hint(ValueHint::DirPath)
            .value_parser(value_parser!(PathBuf))
            .help("vusb's state directory (VUSB_STATE_DIR, default /var/lib/vusb)"),
        Arg::new("qmp-dir")
            .long("qmp-dir")
            .value_name("DIR")
            .value_hint(ValueHint::DirPath)
            .value_parser(value_parser!(PathBuf))
            .help("Directory of qmp-libxl-<domid> sockets (VUSB_QMP_DIR, default /var/run/xen)"),
        Arg::new("qmp")
            .long("qmp")
            .value_name("PATH")
            .value_hint(ValueHint::FilePath)
            .value_parser(value_parser!(PathBuf))
            .help("Manage a plain QEMU/KVM VM through this QMP socket (the xl commands only)"),
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::SetTrue)
            .help("Print help (vusb help CMD: a command's)"),
        Arg::new("version")
            .short('V')
            .long("version")
            .action(ArgAction::SetTrue)
            .help("Print version, commit and the Xen/QEMU versions vusb is compatible with"),
    ]
}

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
fn xl_commands() -> Vec<Command> {
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
fn vusb_commands() -> Vec<Command> {
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

/// The whole description.
pub fn command() -> Command {
    let c = base();
    let mut options = String::from("Command options:\n");
    for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
        for a in sub.get_arguments() {
            let (Some(long), Some(help)) = (a.get_long(), a.get_help()) else {
                continue;
            };
            if long == "help" {
                continue;
            }
            let flag = match a.get_short() {
                Some(s) => format!("-{s}, --{long}"),
                None => format!("--{long}"),
            };
            options.push_str(&format!(
                "  {:<34} {help}\n",
                format!("{} {flag}", sub.get_name())
            ));
        }
    }
    let after = c
        .get_after_long_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    c.after_long_help(format!("{options}\n{after}"))
}

fn base() -> Command {
    Command::new("vusb")
        .version(env!("CARGO_PKG_VERSION"))
        .long_version(long_version())
        .about(
            "USB passthrough for Xen guests and plain QEMU/KVM VMs, drop-in for xl's USB commands",
        )
        .long_about(
            "vusb passes host USB devices through to Xen guests (libxl's pv, qusb and\n\
             devicemodel controllers) and to plain QEMU/KVM VMs (--qmp), with the\n\
             commands, output, exit status and xenstore layout of Xen 4.17's xl.",
        )
        .override_usage("vusb [GLOBAL OPTIONS] <COMMAND> [ARGS...]")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .args(global_args())
        .subcommands(xl_commands())
        .subcommands(vusb_commands())
        .after_long_help(concat!(
            "Command names may be abbreviated to an unambiguous prefix (usb-l), as in xl.\n\n",
            "Exit status: 0 success; 1 the operation failed or the input was refused\n",
            "(nothing changed); 2 usage error; 255 usb-list with extra arguments (as xl).\n\n",
            "Environment: XENSTORED_PATH, XENSTORED_RUNDIR (the xenstore daemon, found as\n",
            "libxenstore finds it), VUSB_SYSFS_ROOT, VUSB_PROC_ROOT, VUSB_STATE_DIR,\n",
            "VUSB_QMP_DIR, VUSB_XEN_LIB_DIR, VUSB_BACKEND_TIMEOUT_MS,\n",
            "VUSB_UNPLUG_TIMEOUT_MS, VUSB_LOG (env_logger filter).\n\n",
            "No Xen here? `vusb sim` runs a short session on a simulated host."
        ))
}

/// The parser of the global options: the same options, then everything
/// from the command name on, untouched (the command parses it).
pub fn global_parser() -> Command {
    Command::new("vusb")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(global_args())
        .arg(
            Arg::new("rest")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_parser(value_parser!(OsString)),
        )
}

/// An exact command name, or a prefix of exactly one (as xl allows). The
/// hidden `__complete` only by its full name.
pub fn resolve(name: &str) -> Option<&'static str> {
    if name == "__complete" {
        return Some("__complete");
    }
    if let Some(exact) = ALL_COMMANDS.iter().find(|c| **c == name) {
        return Some(exact);
    }
    let mut matches = ALL_COMMANDS.iter().filter(|c| c.starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(only), None) if !name.is_empty() => Some(only),
        _ => None,
    }
}

/// The visible commands' names, in help order.
pub fn command_names() -> Vec<String> {
    command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_is_consistent() {
        command().debug_assert();
        global_parser().debug_assert();
    }
}
