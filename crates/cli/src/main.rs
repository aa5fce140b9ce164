//! `vusb`: USB passthrough for Xen guests and plain QEMU/KVM VMs, with the
//! commands and output of `xl`.
//!
//! This file only parses the global options and dispatches: one flat
//! `match` from command name to its module in [`commands`]. Exit codes
//! (documented in `docs/cli.md`): 0 success, 1 the operation failed or the
//! input was refused, 2 usage error, 255 `usb-list` with extra arguments
//! (as xl).

mod commands;
mod context;
mod output;

use std::process::ExitCode;

use context::Context;

const USAGE: &str = "\
usage: vusb [GLOBAL OPTIONS] <command> [ARGS...]

xl-compatible commands:
  usbctrl-attach <dom> [type=auto|pv|qusb|devicemodel] [version=N] [ports=N] [model=M]
  usbctrl-detach <dom> <devid>
  usbdev-attach  <dom> hostbus=B hostaddr=A [controller=C [port=P]] (or busid=, vendor=/product=[/serial=], portpath=, type=tablet|mouse|keyboard)
  usbdev-detach  <dom> <controller> <port>   |   <dom> busid=B
  usb-list       <dom> [--json]

vusb extensions:
  usb-assignable-list [--all] [--json]
  usb-recover
  usb-release <dom>
  config-show FILE
  config-apply <dom> FILE | <dom> --saved
  config-dump <dom>
  sim [run] | sim start DIR | sim stop DIR | sim unplug DIR BUSID | sim plug DIR BUSID [--bus N]

rules and the daemon:
  usb-rule-add <dom-name|uuid> <selector...> [mode=auto|required] [priority=N]   |   --config FILE
  usb-rule-list [--json]
  usb-rule-remove <id>
  usb-rule-explain <id> [--json]
  daemon [--uevents netlink|none|unix:PATH]
  daemon-status [--json]

global options:
  -v, -vv, -vvv        more logging on stderr
  --sysfs-root DIR     sysfs root (VUSB_SYSFS_ROOT, default /sys)
  --state-dir DIR      vusb state directory (VUSB_STATE_DIR, default /var/lib/vusb)
  --qmp-dir DIR        directory of qmp-libxl-<domid> sockets (VUSB_QMP_DIR, default /var/run/xen)
  --qmp PATH           manage a plain QEMU/KVM VM through this QMP socket
  -h, --help           this text
";

/// The commands, for xl's unambiguous-prefix abbreviation (`usb-l`).
const COMMANDS: &[&str] = &[
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
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ctx, rest) = match Context::from_args(&args) {
        Ok(Some(v)) => v,
        Ok(None) => {
            output::out(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vusb: {e:#}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    ctx.init_logging();
    let Some((name, cmd_args)) = rest.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let Some(command) = resolve_command(name) else {
        eprintln!("vusb: command not implemented: {name}");
        return ExitCode::from(2);
    };
    const VM_COMMANDS: &[&str] = &[
        "usbctrl-attach",
        "usbctrl-detach",
        "usbdev-attach",
        "usbdev-detach",
        "usb-list",
    ];
    if let Some(qmp) = ctx.qmp.as_deref() {
        if !VM_COMMANDS.contains(&command) {
            eprintln!("vusb: {command} does not work with --qmp");
            return ExitCode::from(2);
        }
        return match commands::qemu_vm::run(&ctx, qmp, command, cmd_args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("vusb {command}: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match command {
        "usbctrl-attach" => commands::usbctrl_attach::run(&ctx, cmd_args),
        "usbctrl-detach" => commands::usbctrl_detach::run(&ctx, cmd_args),
        "usbdev-attach" => commands::usbdev_attach::run(&ctx, cmd_args),
        "usbdev-detach" => commands::usbdev_detach::run(&ctx, cmd_args),
        "usb-list" => commands::usb_list::run(&ctx, cmd_args),
        "usb-assignable-list" => commands::usb_assignable_list::run(&ctx, cmd_args),
        "usb-recover" => commands::usb_recover::run(&ctx, cmd_args),
        "usb-release" => commands::usb_release::run(&ctx, cmd_args),
        "config-show" => commands::config_show::run(&ctx, cmd_args),
        "config-apply" => commands::config_apply::run(&ctx, cmd_args),
        "config-dump" => commands::config_dump::run(&ctx, cmd_args),
        "sim" => commands::sim::run(&ctx, cmd_args),
        "usb-rule-add" => commands::usb_rule_add::run(&ctx, cmd_args),
        "usb-rule-list" => commands::usb_rule_list::run(&ctx, cmd_args),
        "usb-rule-remove" => commands::usb_rule_remove::run(&ctx, cmd_args),
        "usb-rule-explain" => commands::usb_rule_explain::run(&ctx, cmd_args),
        "daemon" => commands::daemon::run(&ctx, cmd_args),
        "daemon-status" => commands::daemon_status::run(&ctx, cmd_args),
        _ => unreachable!("resolve_command returns only listed names"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vusb {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An exact name, or a prefix of exactly one command (as xl allows).
fn resolve_command(name: &str) -> Option<&'static str> {
    if let Some(exact) = COMMANDS.iter().find(|c| **c == name) {
        return Some(exact);
    }
    let mut matches = COMMANDS.iter().filter(|c| c.starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(only), None) if !name.is_empty() => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_command;

    #[test]
    fn abbreviations_resolve_only_when_unambiguous() {
        assert_eq!(resolve_command("usb-l"), Some("usb-list"));
        assert_eq!(resolve_command("usbc"), None);
        assert_eq!(resolve_command("usbctrl-attach"), Some("usbctrl-attach"));
        assert_eq!(resolve_command("nope"), None);
    }
}
