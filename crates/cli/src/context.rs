//! Global options and the host locations every command receives.

use std::path::PathBuf;

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
    /// xl's `-N`: dry run (the plan is in `paths.dry_run`).
    pub dry_run: bool,
    /// `--json` (with `-N`): print the plan as JSON.
    pub plan_json: bool,
}

impl Context {
    /// The context the global options (parsed by [`crate::cli`]) describe.
    pub fn from_matches(m: &clap::ArgMatches) -> Context {
        let mut paths = HostPaths::from_env();
        if let Some(p) = m.get_one::<PathBuf>("sysfs-root") {
            paths.sysfs_root = p.clone();
        }
        if let Some(p) = m.get_one::<PathBuf>("state-dir") {
            paths.state_dir = p.clone();
        }
        if let Some(p) = m.get_one::<PathBuf>("qmp-dir") {
            paths.qmp_dir = p.clone();
        }
        let dry_run = m.get_flag("dry-run");
        if dry_run {
            paths.dry_run = Some(vusb_core::dryrun::Plan::new());
        }
        Context {
            paths,
            qmp: m.get_one::<PathBuf>("qmp").cloned(),
            verbosity: m.get_count("verbose"),
            dry_run,
            plan_json: m.get_flag("json"),
        }
    }

    /// Route the `log` facade to stderr at the level `-v` asked for
    /// ([`crate::logging`]).
    pub fn init_logging(&self, progress: bool) {
        crate::logging::init(self.verbosity, progress);
    }
}
