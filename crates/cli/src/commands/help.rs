//! `vusb help [COMMAND]`, `vusb --help`, `vusb COMMAND -h|--help`: the
//! help generated from the one description in [`crate::cli`], with every
//! selector and extension vusb accepts.

use std::process::ExitCode;

use crate::cli;
use crate::output::out;

/// `vusb --help`: every command and option.
pub fn top() -> String {
    cli::command().render_long_help().to_string()
}

/// What a bare `vusb` prints on stderr.
pub fn short() -> String {
    format!(
        "{}\ncommands: {}\n`vusb --help` for the options, `vusb help COMMAND` for a command\n",
        cli::command().render_usage(),
        cli::command_names().join(", ")
    )
}

/// The help of `name` (a full command name).
pub fn command(name: &str) -> String {
    let mut top = cli::command();
    top.build();
    match top.find_subcommand_mut(name) {
        Some(c) => c.render_long_help().to_string(),
        None => self::top(),
    }
}

/// Run `vusb help [COMMAND]`.
pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    match args {
        [] => out(&top()),
        [name] => match cli::resolve(name) {
            Some(c) => out(&command(c)),
            None => {
                eprintln!(
                    "vusb: unknown command {name:?}{}",
                    crate::args::suggestion(name, &cli::command_names())
                );
                return Ok(ExitCode::from(2));
            }
        },
        _ => {
            eprintln!("usage: vusb help [COMMAND]");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
