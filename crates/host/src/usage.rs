//! What the host itself is using: block devices with a mounted file
//! system (`<proc>/self/mountinfo`), active swap (`<proc>/swaps`) or a
//! holder (LVM, md, dm-crypt: `<sysfs>/block/*/holders`), found per block
//! device together with the sysfs path of the disk so that the USB device
//! above it can be identified. libxl has no such check (reference §5.3).

use std::path::Path;

use crate::error::{Error, Result};
use crate::sysfs::{SysfsPath, list_dir, resolve_relative};

/// How the host uses a block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseKind {
    /// A file system on it is mounted.
    Mounted {
        /// Where (the first mount point found).
        mount_point: String,
    },
    /// It is active swap.
    Swap,
    /// Another block device holds it (`dm-0`, `md127`).
    Holder {
        /// The holder's name.
        holder: String,
    },
}

/// One use of a disk or partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUse {
    /// The disk's directory under the sysfs root, as components; a USB
    /// device whose devpath is a prefix owns it.
    pub disk_devpath: Vec<String>,
    /// The disk or partition in use (`sdb1`).
    pub block: String,
    /// How it is used.
    pub kind: UseKind,
}

impl BlockUse {
    /// A short sentence: `/dev/sdb1 is mounted on /media/usb`.
    pub fn describe(&self) -> String {
        match &self.kind {
            UseKind::Mounted { mount_point } => {
                format!("/dev/{} is mounted on {mount_point}", self.block)
            }
            UseKind::Swap => format!("/dev/{} is in use as swap", self.block),
            UseKind::Holder { holder } => format!("/dev/{} is held by {holder}", self.block),
        }
    }
}

struct Mount {
    majmin: String,
    source: String,
    mount_point: String,
}

/// Every use of every block device the host has.
pub fn block_uses(sysfs_root: &Path, proc_root: &Path) -> Result<Vec<BlockUse>> {
    let mounts = read_mountinfo(&proc_root.join("self/mountinfo"))?;
    let swaps = read_swaps(&proc_root.join("swaps"))?;
    let mut block_dir = sysfs_root.join("block");
    let mut disks = list_dir(&block_dir)?;
    if disks.is_empty() {
        block_dir = sysfs_root.join("class/block");
        disks = list_dir(&block_dir)?;
    }
    // class/block (and umockdev's block/) list partitions too; keep whole
    // disks (no `partition` attribute): partitions are found inside them.
    disks.retain(|d| std::fs::symlink_metadata(block_dir.join(d).join("partition")).is_err());
    let mut uses = Vec::new();
    for disk in disks {
        let dir = SysfsPath::new(block_dir.join(&disk));
        let devpath = match std::fs::read_link(dir.path()) {
            Ok(t) => resolve_relative(&block_dir, &t, sysfs_root),
            Err(_) => continue,
        };
        let mut nodes = vec![(disk.clone(), dir.clone())];
        for child in dir.list()? {
            if child.starts_with(&disk) && dir.join(&child).has("dev") {
                nodes.push((child.clone(), dir.join(&child)));
            }
        }
        for (name, node) in nodes {
            let majmin = node
                .read_text("dev")
                .map(|t| t.trim().to_owned())
                .unwrap_or_default();
            let dev_name = format!("/dev/{name}");
            let mut push = |kind| {
                uses.push(BlockUse {
                    disk_devpath: devpath.clone(),
                    block: name.clone(),
                    kind,
                })
            };
            if let Some(m) = mounts
                .iter()
                .find(|m| (!majmin.is_empty() && m.majmin == majmin) || m.source == dev_name)
            {
                push(UseKind::Mounted {
                    mount_point: m.mount_point.clone(),
                });
            }
            if swaps.contains(&dev_name) {
                push(UseKind::Swap);
            }
            for holder in node
                .join("holders")
                .list()?
                .into_iter()
                .filter(|h| !h.starts_with('.'))
            {
                push(UseKind::Holder { holder });
            }
        }
    }
    Ok(uses)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::debug!("{} does not exist; no uses found there", path.display());
            Ok(None)
        }
        Err(source) => Err(Error::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_mountinfo(path: &Path) -> Result<Vec<Mount>> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut mounts = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 5 || fields.len() < sep + 3 {
            continue;
        }
        mounts.push(Mount {
            majmin: fields[2].to_owned(),
            mount_point: unescape(fields[4]),
            source: unescape(fields[sep + 2]),
        });
    }
    Ok(mounts)
}

fn read_swaps(path: &Path) -> Result<Vec<String>> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(unescape))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn mountinfo_fields_and_escapes() {
        let dir = std::env::temp_dir().join(format!("vusb-host-mi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("mountinfo");
        std::fs::write(
            &p,
            "36 35 8:17 / /media/my\\040stick rw,relatime shared:1 - vfat /dev/sdb1 rw\n\
                            37 35 0:5 / /dev rw - devtmpfs udev rw\n",
        )
        .unwrap();
        let m = read_mountinfo(&p).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].majmin, "8:17");
        assert_eq!(m[0].mount_point, "/media/my stick");
        assert_eq!(m[0].source, "/dev/sdb1");
        std::fs::write(
            &p,
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sdc2  partition\t100\t0\t-2\n",
        )
        .unwrap();
        assert_eq!(read_swaps(&p).unwrap(), vec!["/dev/sdc2".to_owned()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
