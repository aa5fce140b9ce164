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

mod subcommands;
use subcommands::{vusb_commands, xl_commands};

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
            .help(
                "Dry run (xl's -N; a vusb extension for the USB commands): print every \
                 xenstore, sysfs, QMP, process and file change the command would make, \
                 and change nothing",
            ),
        Arg::new("json")
            .long("json")
            .action(ArgAction::SetTrue)
            .requires("dry-run")
            .help("With -N: the plan as one JSON document (effects, and what the command printed)"),
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
