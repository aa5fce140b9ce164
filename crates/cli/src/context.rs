//! Global options and the host locations every command receives.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use vusb_core::HostPaths;

/// What every command gets: where the host's files are, how loud to be,
/// and whether a plain QEMU VM is targeted.
#[derive(Debug, Clone)]
pub struct Context {
    /// Host locations (sysfs, state, QMP sockets...).
    pub paths: HostPaths,
    /// `--qmp PATH`: manage a plain QEMU/KVM VM instead of a Xen guest.
    pub qmp: Option<PathBuf>,
    /// Number of `-v`.
    pub verbosity: u8,
}

impl Context {
    /// Parse the global options in front of the command name. `Ok(None)`
    /// means `--help` was asked for.
    pub fn from_args(args: &[String]) -> anyhow::Result<Option<(Context, &[String])>> {
        let mut ctx = Context {
            paths: HostPaths::from_env(),
            qmp: None,
            verbosity: 0,
        };
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_str();
            let mut value = |name: &str| -> anyhow::Result<PathBuf> {
                i += 1;
                args.get(i)
                    .map(PathBuf::from)
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg {
                "-h" | "--help" => return Ok(None),
                "--sysfs-root" => ctx.paths.sysfs_root = value(arg)?,
                "--state-dir" => ctx.paths.state_dir = value(arg)?,
                "--qmp-dir" => ctx.paths.qmp_dir = value(arg)?,
                "--qmp" => ctx.qmp = Some(value(arg)?),
                a if a.starts_with("-v") && a[1..].chars().all(|c| c == 'v') => {
                    ctx.verbosity = ctx.verbosity.saturating_add((a.len() - 1) as u8);
                }
                a if a.starts_with('-') => bail!("unknown global option {a}"),
                _ => break,
            }
            i += 1;
        }
        Ok(Some((ctx, &args[i..])))
    }

    /// Route the `log` facade to stderr at the level `-v` asked for.
    pub fn init_logging(&self) {
        let level = match self.verbosity {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        };
        env_logger::Builder::new()
            .filter_level(level)
            .format_timestamp(None)
            .parse_env("VUSB_LOG")
            .init();
    }
}
