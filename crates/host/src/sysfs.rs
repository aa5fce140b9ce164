//! [`SysfsPath`]: a sysfs directory whose readers name the attribute file
//! in every error and parse through [`crate::parse`].
//!
//! Only plain `std::fs` calls that `umockdev-run`'s preload library
//! intercepts are used (`open`, `opendir`, `readlink`, `lstat`/`statx`), so
//! the unmodified binary works on a recorded tree (see `docs/host-usb.md`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::parse;

/// A directory in sysfs (a device, an interface, a driver...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsPath(pub PathBuf);

impl SysfsPath {
    /// Wrap a directory path.
    pub fn new(path: impl Into<PathBuf>) -> SysfsPath {
        SysfsPath(path.into())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The last component (a busid, an interface name, a driver name).
    pub fn name(&self) -> String {
        self.0
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A child path.
    pub fn join(&self, name: &str) -> SysfsPath {
        SysfsPath(self.0.join(name))
    }

    /// Whether `attr` exists (as a file, directory or link; links are not
    /// followed).
    pub fn has(&self, attr: &str) -> bool {
        std::fs::symlink_metadata(self.0.join(attr)).is_ok()
    }

    /// The raw bytes of an attribute.
    pub fn read_bytes(&self, attr: &str) -> Result<Vec<u8>> {
        let path = self.0.join(attr);
        std::fs::read(&path).map_err(|source| Error::ReadFile { path, source })
    }

    /// An attribute as text (lossy UTF-8), unparsed.
    pub fn read_text(&self, attr: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read_bytes(attr)?).into_owned())
    }

    /// An optional string attribute (`manufacturer`, `product`, `serial`):
    /// `None` when the file does not exist.
    pub fn read_string_opt(&self, attr: &str) -> Result<Option<String>> {
        match self.read_bytes(attr) {
            Ok(raw) => Ok(Some(parse::string_value(&raw))),
            Err(Error::ReadFile { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn parsed<T>(
        &self,
        attr: &str,
        expected: &'static str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let text = self.read_text(attr)?;
        f(&text).ok_or_else(|| Error::ParseAttribute {
            path: self.0.join(attr),
            value: parse::trim_value(&text).to_owned(),
            expected,
        })
    }

    /// A hex attribute of up to 4 digits (`idVendor`).
    pub fn read_hex16(&self, attr: &str) -> Result<u16> {
        self.parsed(attr, "a 16-bit hex number", |t| {
            parse::hex_u32(t, 4).map(|v| v as u16)
        })
    }

    /// A hex attribute of up to 2 digits (`bDeviceClass`).
    pub fn read_hex8(&self, attr: &str) -> Result<u8> {
        self.parsed(attr, "an 8-bit hex number", |t| {
            parse::hex_u32(t, 2).map(|v| v as u8)
        })
    }

    /// A decimal attribute (`busnum`, `devnum`).
    pub fn read_decimal(&self, attr: &str) -> Result<u32> {
        self.parsed(attr, "a decimal number", parse::decimal_u32)
    }

    /// A device number (`devnum`: 1 to 127 on Linux, `u8` as libxl's
    /// `hostaddr`).
    pub fn read_devnum(&self, attr: &str) -> Result<u8> {
        self.parsed(attr, "a decimal number up to 255", parse::decimal_u8)
    }

    /// The `speed` attribute in kbit/s; `None` for `"unknown"`.
    pub fn read_speed_kbps(&self, attr: &str) -> Result<Option<u32>> {
        let text = self.read_text(attr)?;
        Ok(parse::speed_kbps(&text))
    }

    /// The `version` attribute, trimmed (`"2.00"`).
    pub fn read_version(&self, attr: &str) -> Result<String> {
        self.parsed(attr, "a USB version like 2.00", parse::usb_version)
    }

    /// The target of a symbolic link, as stored.
    pub fn read_link(&self, attr: &str) -> Result<PathBuf> {
        let path = self.0.join(attr);
        std::fs::read_link(&path).map_err(|source| Error::ReadLink { path, source })
    }

    /// The target of a link, or `None` when the link does not exist.
    pub fn read_link_opt(&self, attr: &str) -> Result<Option<PathBuf>> {
        match self.read_link(attr) {
            Ok(t) => Ok(Some(t)),
            Err(Error::ReadLink { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The names in this directory, sorted. A missing directory is empty.
    pub fn list(&self) -> Result<Vec<String>> {
        list_dir(&self.0)
    }
}

/// The entry names of `dir`, sorted; an absent directory gives an empty list.
pub fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::ListDirectory {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::ListDirectory {
            path: dir.to_owned(),
            source,
        })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Resolve `..` and `.` in `link` relative to the directory holding it,
/// without touching the file system (the target may be a recording that
/// has no such directory). Returns components below the sysfs root.
pub fn resolve_relative(link_dir: &Path, target: &Path, sysfs_root: &Path) -> Vec<String> {
    let mut parts: Vec<String> = if target.is_absolute() {
        Vec::new()
    } else {
        link_dir
            .strip_prefix(sysfs_root)
            .unwrap_or(link_dir)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect()
    };
    for c in target.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    if target.is_absolute() && parts.first().map(String::as_str) == Some("sys") {
        parts.remove(0);
    }
    parts
}
