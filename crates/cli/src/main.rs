//! `vusb`: USB passthrough for Xen guests and plain QEMU/KVM VMs, with the
//! commands and output of `xl`.
//!
//! This file only parses the global options (with the description in
//! [`cli`]) and dispatches: one flat `match` from command name to its
//! module in [`commands`]. Exit codes (documented in `docs/cli.md`): 0
//! success, 1 the operation failed or the input was refused, 2 usage
//! error, 255 `usb-list` with extra arguments (as xl).

mod args;
mod cli;
mod commands;
mod context;
mod dry_run;
mod explain;
mod logging;
mod output;

use std::ffi::OsString;
use std::process::ExitCode;

use context::Context;

fn main() -> ExitCode {
    let matches = match cli::global_parser().try_get_matches_from(std::env::args_os()) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let ctx = Context::from_matches(&matches);
    let rest: Vec<OsString> = matches
        .get_many::<OsString>("rest")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    if matches.get_flag("version") {
        output::out(&format!("vusb {}\n", cli::long_version()));
        return ExitCode::SUCCESS;
    }
    if matches.get_flag("help") {
        output::out(&commands::help::top());
        return ExitCode::SUCCESS;
    }
    let Some((name, cmd_args)) = rest.split_first() else {
        eprint!("{}", commands::help::short());
        return ExitCode::from(2);
    };
    let name_text = name.to_string_lossy();
    if name_text.starts_with('-') && name_text.len() > 1 {
        eprintln!(
            "vusb: unknown global option {name:?}{}",
            args::suggestion(&name_text, &cli::global_option_names())
        );
        eprintln!("vusb: `vusb --help` lists the options");
        return ExitCode::from(2);
    }
    // The daemon gets no wait announcer: no thread waking up while idle.
    ctx.init_logging(name.to_str().and_then(cli::resolve) != Some("daemon"));
    let Some(command) = name.to_str().and_then(cli::resolve) else {
        eprintln!(
            "vusb: unknown command {name:?}{}",
            args::suggestion(&name_text, &cli::command_names())
        );
        eprintln!("vusb: `vusb help` lists the commands");
        return ExitCode::from(2);
    };
    if ctx.dry_run
        && let Some(code) = dry_run::refuses(command)
    {
        return code;
    }
    if ctx.plan_json && dry_run::CHANGING.contains(&command) {
        output::capture();
    }
    if !cli::XL_COMMANDS.contains(&command) && args::asks_help(cmd_args) {
        output::out(&commands::help::command(command));
        return ExitCode::SUCCESS;
    }
    // Commands whose arguments are paths take them as they are; the others
    // need text (domain names, KEY=VALUE specs).
    match command {
        "config-show" => return report(&ctx, command, commands::config_show::run(&ctx, cmd_args)),
        "config-apply" => {
            return report(&ctx, command, commands::config_apply::run(&ctx, cmd_args));
        }
        "sim" => return report(&ctx, command, commands::sim::run(&ctx, cmd_args)),
        _ => {}
    }
    let cmd_args = match args::utf8(cmd_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(qmp) = ctx.qmp.as_deref() {
        if !cli::XL_COMMANDS.contains(&command) {
            eprintln!("vusb: {command} does not work with --qmp");
            return ExitCode::from(2);
        }
        return report(
            &ctx,
            command,
            commands::qemu_vm::run(&ctx, qmp, command, &cmd_args),
        );
    }
    let result = match command {
        "usbctrl-attach" => commands::usbctrl_attach::run(&ctx, &cmd_args),
        "usbctrl-detach" => commands::usbctrl_detach::run(&ctx, &cmd_args),
        "usbdev-attach" => commands::usbdev_attach::run(&ctx, &cmd_args),
        "usbdev-detach" => commands::usbdev_detach::run(&ctx, &cmd_args),
        "usb-list" => commands::usb_list::run(&ctx, &cmd_args),
        "usb-assignable-list" => commands::usb_assignable_list::run(&ctx, &cmd_args),
        "usb-recover" => commands::usb_recover::run(&ctx, &cmd_args),
        "usb-release" => commands::usb_release::run(&ctx, &cmd_args),
        "config-dump" => commands::config_dump::run(&ctx, &cmd_args),
        "usb-rule-add" => commands::usb_rule_add::run(&ctx, &cmd_args),
        "usb-rule-list" => commands::usb_rule_list::run(&ctx, &cmd_args),
        "usb-rule-remove" => commands::usb_rule_remove::run(&ctx, &cmd_args),
        "usb-rule-explain" => commands::usb_rule_explain::run(&ctx, &cmd_args),
        "daemon" => commands::daemon::run(&ctx, &cmd_args),
        "daemon-status" => commands::daemon_status::run(&ctx, &cmd_args),
        "help" => commands::help::run(&cmd_args),
        "completions" => commands::completions::run(&cmd_args),
        "manpage" => commands::manpage::run(&cmd_args),
        "__complete" => commands::completions::dynamic(&ctx, &cmd_args),
        _ => unreachable!("resolve_command returns only listed names"),
    };
    report(&ctx, command, result)
}

/// A command's result: its exit status, or its error printed once; in a
/// dry run then the plan ([`dry_run::finish`]).
fn report(ctx: &Context, command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    let code = report_result(ctx, command, result);
    dry_run::finish(ctx, command, code)
}

fn report_result(ctx: &Context, command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vusb {command}: {e:#}");
            for line in explain::anyhow_hints(ctx, &e) {
                eprintln!("vusb: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::resolve as resolve_command;

    #[test]
    fn abbreviations_resolve_only_when_unambiguous() {
        assert_eq!(resolve_command("usb-l"), Some("usb-list"));
        assert_eq!(resolve_command("usbc"), None);
        assert_eq!(resolve_command("usbctrl-attach"), Some("usbctrl-attach"));
        assert_eq!(resolve_command("nope"), None);
        assert_eq!(resolve_command("__c"), None);
    }

    #[test]
    fn every_described_command_is_dispatched() {
        let described = crate::cli::command_names();
        assert_eq!(described, crate::cli::ALL_COMMANDS);
    }
}
