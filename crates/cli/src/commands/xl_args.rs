//! xl's argument handling for the USB commands (reference §1.1), shared by
//! their command files: getopt in POSIX mode with only `-h`/`--help`
//! (options end at the first non-option or `--`), help on stdout with exit
//! 0, ``option `x' not supported.`` with exit 2, and the minimum argument
//! count with xl's message, a blank line and the help (exit 2). The help
//! text is xl's own, byte for byte, so scripts comparing output see no
//! difference. Also: opening the xenstore connection and printing an
//! operation's failure as xl does (the specific message, then xl's
//! `libxl_device_..._add failed.` line), exit 1.

use std::process::ExitCode;

use std::time::Duration;

use vusb_core::domain::{self, Domain};
use vusb_core::dryrun::DryXenstore;
use vusb_core::ops::Timeouts;
use vusb_xenstore::client::Client;

use crate::context::Context;

/// What xl's command table says about a command.
pub struct XlCmd {
    /// The command name.
    pub name: &'static str,
    /// The usage after the name.
    pub usage: &'static str,
    /// The description (printed with a final `.`).
    pub desc: &'static str,
    /// Whether xl marks it as modifying (adds `f` to the flags).
    pub modifies: bool,
    /// Minimum positional arguments.
    pub min_args: usize,
}

/// xl's help text of `cmd`.
pub fn help_text(cmd: &XlCmd) -> String {
    format!(
        "Usage: xl [-vtT{}] {} {}\n\n{}.\n\n",
        if cmd.modifies { "f" } else { "" },
        cmd.name,
        cmd.usage,
        cmd.desc
    )
}

/// The positional arguments, or the exit status when xl would stop here.
pub fn positional<'a>(cmd: &XlCmd, args: &'a [String]) -> Result<&'a [String], ExitCode> {
    let rest = options(cmd, args)?;
    if rest.len() < cmd.min_args {
        eprintln!(
            "'xl {}' requires at least {} argument{}.\n",
            cmd.name,
            cmd.min_args,
            if cmd.min_args > 1 { "s" } else { "" }
        );
        crate::output::out(&help_text(cmd));
        return Err(ExitCode::from(2));
    }
    Ok(rest)
}

/// Handle the leading options (`-h`, `--help`, `--`); the rest, or the
/// exit status when xl would stop here.
pub fn options<'a>(cmd: &XlCmd, args: &'a [String]) -> Result<&'a [String], ExitCode> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a.len() == 1 {
            break;
        }
        if a == "--help" {
            crate::output::out(&super::help::command(cmd.name));
            return Err(ExitCode::SUCCESS);
        }
        if let Some(long) = a.strip_prefix("--") {
            eprintln!("option `{long}' not supported.");
            return Err(ExitCode::from(2));
        }
        // getopt handles the first letter first: `-hx` is help, `-xh` an error.
        match a.chars().nth(1) {
            Some('h') => {
                crate::output::out(&super::help::command(cmd.name));
                return Err(ExitCode::SUCCESS);
            }
            Some(c) => {
                eprintln!("option `{c}' not supported.");
                return Err(ExitCode::from(2));
            }
            None => {}
        }
        i += 1;
    }
    Ok(&args[i..])
}

/// Open xenstore where libxenstore would; failing that, an error whose
/// hint suggests `vusb sim` and `--qmp` ([`crate::explain`]).
/// In a dry run (`-N`) the connection keeps every change in the plan
/// ([`vusb_core::dryrun::DryXenstore`]); otherwise it is the plain client.
pub fn open_xenstore(ctx: &Context) -> anyhow::Result<Store> {
    let client = Client::open().map_err(|e| anyhow::Error::new(crate::explain::NoXenstore(e)))?;
    Ok(DryXenstore::new(client, ctx.paths.dry_run.clone()))
}

/// A command's xenstore connection (see [`open_xenstore`]).
pub type Store = DryXenstore<Client>;

/// Print `e`'s chain on one line to stderr.
pub fn print_error(e: &(dyn std::error::Error + 'static)) {
    let mut line = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        line.push_str(": ");
        line.push_str(&s.to_string());
        src = s.source();
    }
    eprintln!("{line}");
}

/// Resolve the domain argument; on failure print xl's message, exit 1.
/// (An unknown domain needs no `vusb:` line: xl's message says it all.)
pub fn domain(xs: &Store, arg: &str) -> Result<Domain, ExitCode> {
    domain::resolve(xs, arg).map_err(|e| {
        print_error(&e);
        ExitCode::FAILURE
    })
}

/// An operation failed: its message, then xl's line (if any), then the
/// `vusb:` lines saying why and what to do; exit 1.
pub fn fail(ctx: &Context, e: &vusb_core::Error, xl_line: Option<&str>) -> ExitCode {
    fail_spec(ctx, e, xl_line, None)
}

/// [`fail`] for a usbdev command, with the device spec the user wrote (for
/// "closest device" suggestions).
pub fn fail_spec(
    ctx: &Context,
    e: &vusb_core::Error,
    xl_line: Option<&str>,
    spec: Option<&vusb_xlcfg::UsbDevSpec>,
) -> ExitCode {
    print_error(e);
    if let Some(l) = xl_line {
        eprintln!("{l}");
    }
    for line in crate::explain::lines(ctx, e, spec) {
        eprintln!("vusb: {line}");
    }
    ExitCode::FAILURE
}

/// Operation timeouts: libxl's 10 s, or `VUSB_BACKEND_TIMEOUT_MS`
/// (milliseconds, for tests and slow hosts).
pub fn timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    if let Some(ms) = std::env::var("VUSB_BACKEND_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        t.backend_connect = Duration::from_millis(ms);
        t.backend_close = Duration::from_millis(ms);
    }
    if let Some(ms) = std::env::var("VUSB_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        t.lock_wait = Duration::from_millis(ms);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_xls() {
        let c = XlCmd {
            name: "usb-list",
            usage: "<Domain>",
            desc: "List information about all USB controllers and devices for a domain",
            modifies: false,
            min_args: 1,
        };
        assert_eq!(
            help_text(&c),
            "Usage: xl [-vtT] usb-list <Domain>\n\nList information about all USB controllers and devices for a domain.\n\n"
        );
    }
}
