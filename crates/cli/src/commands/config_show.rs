//! `vusb config-show FILE`: the USB part of an xl config file as JSON, in
//! libxl's own shape (see `vusb_xlcfg::json`), read as `xl create` reads
//! it. xl's warnings go to stderr as `FILE:LINE: warning: …`; a bad file
//! exits 1 with `FILE:LINE:COL: message`. `-` reads stdin.
//!
//! Unlike libxlu, which works on bytes, the text must be UTF-8 for vusb:
//! invalid bytes are replaced (with a warning) rather than refused, since
//! they occur in comments of old files and never in USB settings. The file
//! *name* may be any bytes; `-- FILE` reads a file whose name starts with
//! `-`.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};

use crate::context::Context;
use crate::output::out;

/// Reads a config file (or stdin for `-`) as text, with a warning for
/// bytes that are not UTF-8.
pub fn read_config_text(file: &OsStr) -> anyhow::Result<String> {
    let shown = Path::new(file).display();
    use vusb_core::small_file::{self, MAX_CONFIG_FILE};
    // Bounded: a regular file of at most MAX_CONFIG_FILE bytes (a FIFO or
    // /dev/zero is refused), stdin cut at the same size.
    let bytes = if file == "-" {
        small_file::read_limited(std::io::stdin().lock(), MAX_CONFIG_FILE)
            .context("reading stdin")?
    } else {
        small_file::read(Path::new(file), MAX_CONFIG_FILE)
            .with_context(|| format!("reading {shown}"))?
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            eprintln!("{shown}:{line}: warning: not valid UTF-8; invalid bytes replaced");
            Ok(String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
    }
}

/// Parses a config file's USB part, printing xl's warnings to stderr.
pub fn load_usb_config(file: &OsStr) -> anyhow::Result<vusb_xlcfg::UsbConfig> {
    let text = read_config_text(file)?;
    let file = Path::new(file).display().to_string();
    let (cfg, warnings) = vusb_xlcfg::parse_usb(&text).map_err(|e| anyhow!(e.in_file(&file)))?;
    for w in warnings {
        eprintln!("{file}:{w}");
    }
    Ok(cfg)
}

/// JSON text the way libxl's yajl generator lays it out (4-space indent).
pub fn pretty_json(v: &serde_json::Value) -> anyhow::Result<String> {
    use serde::Serialize as _;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser).context("formatting JSON")?;
    let mut s = String::from_utf8(buf).context("formatting JSON")?;
    s.push('\n');
    Ok(s)
}

/// Run the command.
pub fn run(_ctx: &Context, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let args = match args {
        [dashes, rest @ ..] if dashes == "--" => rest,
        _ => args,
    };
    let [file] = args else {
        eprintln!("'vusb config-show' requires exactly 1 argument: FILE (or - for stdin)");
        return Ok(ExitCode::from(2));
    };
    let cfg = load_usb_config(file)?;
    out(&pretty_json(&vusb_xlcfg::json::to_json(&cfg))?);
    Ok(ExitCode::SUCCESS)
}
