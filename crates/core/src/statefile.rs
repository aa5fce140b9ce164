//! Small JSON state files of vusb's own under the state directory (the
//! assignment rules, the daemon's journal, the saved per-guest USB
//! configurations of [`crate::persist`]): read whole, written atomically
//! (temporary file, `fsync`, `rename`, `fsync` of the directory), edited
//! under an exclusive `flock` of a sibling `.lock` file so two writers
//! never lose each other's change. The schemas themselves belong to their
//! modules ([`crate::rules`], [`crate::daemon::journal`]).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Read `path` (a regular file of at most
/// [`crate::small_file::MAX_CONFIG_FILE`] bytes, UTF-8); `Ok(None)` when it
/// does not exist.
pub(crate) fn read_opt(path: &Path) -> std::io::Result<Option<String>> {
    match crate::small_file::read(path, crate::small_file::MAX_CONFIG_FILE) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace `path` with `data` atomically (readers see the old or the new
/// file, never a mix; a crash leaves one of them).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The lock file guarding `path` (`path` + `.lock`).
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Take the exclusive lock of `path` (held while the returned file lives).
pub(crate) fn lock(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    crate::flock::lock_exclusive(&lock_path(path))
}
