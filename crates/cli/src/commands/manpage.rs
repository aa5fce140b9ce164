//! `vusb manpage`: the man page vusb(1) in roff, generated from the one
//! description in [`crate::cli`]: clap_mangen renders the name, synopsis,
//! description, global options, command list and the closing notes; a
//! COMMANDS section with every command's usage, arguments and notes is
//! written here from the same description.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Command;
use clap_mangen::Man;

use crate::cli;
use crate::output::out;

/// Run `vusb manpage`.
pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    if !args.is_empty() {
        eprintln!("usage: vusb manpage");
        return Ok(ExitCode::from(2));
    }
    out(&render()?);
    Ok(ExitCode::SUCCESS)
}

/// The page.
pub fn render() -> anyhow::Result<String> {
    let mut top = cli::command();
    top.build();
    let man = Man::new(top.clone()).manual("vusb manual");
    let mut buf = Vec::new();
    man.render_title(&mut buf)
        .context("rendering the man page")?;
    man.render_name_section(&mut buf)
        .context("rendering the man page")?;
    man.render_synopsis_section(&mut buf)
        .context("rendering the man page")?;
    man.render_description_section(&mut buf)
        .context("rendering the man page")?;
    man.render_options_section(&mut buf)
        .context("rendering the man page")?;
    let mut page = String::from_utf8(buf).context("rendering the man page")?;
    page.push_str(".SH COMMANDS\n");
    for sub in top.get_subcommands_mut().filter(|c| !c.is_hide_set()) {
        command_section(&mut page, sub);
    }
    let mut buf = Vec::new();
    man.render_extra_section(&mut buf)
        .context("rendering the man page")?;
    man.render_version_section(&mut buf)
        .context("rendering the man page")?;
    page.push_str(&String::from_utf8(buf).context("rendering the man page")?);
    page.push_str(".SH SEE ALSO\nxl(1), xl.cfg(5)\n");
    Ok(page)
}

/// Text as roff: backslashes escaped, no line starting with a control
/// character, blank lines as paragraph breaks.
fn roff_text(text: &str) -> String {
    let mut s = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            s.push_str(".sp\n");
            continue;
        }
        let l = line.replace('\\', "\\e").replace('-', "\\-");
        if l.starts_with('.') || l.starts_with('\'') {
            s.push_str("\\&");
        }
        s.push_str(&l);
        s.push('\n');
    }
    s
}

fn command_section(page: &mut String, sub: &mut Command) {
    let usage = sub.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    let usage = usage.replace('"', "\\(dq").replace('-', "\\-");
    let _ = writeln!(page, ".SS \"{usage}\"");
    if let Some(about) = sub.get_about() {
        page.push_str(&roff_text(&format!("{about}.")));
    }
    for a in sub.get_arguments() {
        if a.get_id() == "help" || a.is_hide_set() || a.is_global_set() {
            continue;
        }
        let name = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("\\-{s}, \\-\\-{l}"),
            (None, Some(l)) => format!("\\-\\-{l}"),
            (Some(s), None) => format!("\\-{s}"),
            (None, None) => a
                .get_value_names()
                .map(|v| {
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| a.get_id().to_string()),
        };
        let _ = write!(page, ".TP\n\\fB{}\\fR\n", name.replace('"', "\\(dq"));
        if let Some(h) = a.get_help() {
            page.push_str(&roff_text(&h.to_string()));
        }
    }
    if let Some(after) = sub.get_after_long_help() {
        page.push_str(".PP\n.nf\n");
        page.push_str(&roff_text(&after.to_string()).replace(".sp\n", "\n"));
        page.push_str(".fi\n");
    }
}
