//! The in-memory copy of a sysfs tree that [`super::FuseSys`] serves:
//! directories, files and symbolic links by inode number, loaded from a
//! fixture tree on disk.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fuser::{FileAttr, FileType, INodeNo};

/// The root directory's inode.
pub(super) const ROOT_INO: u64 = 1;

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Dir(BTreeMap<String, u64>),
    File(Vec<u8>),
    Link(PathBuf),
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) parent: u64,
    pub(super) name: String,
    pub(super) kind: Kind,
}

#[derive(Debug, Default)]
pub(super) struct Tree {
    pub(super) nodes: HashMap<u64, Node>,
    next: u64,
}

impl Tree {
    pub(super) fn load(src: &Path) -> io::Result<Tree> {
        let mut t = Tree {
            nodes: HashMap::new(),
            next: ROOT_INO + 1,
        };
        t.nodes.insert(
            ROOT_INO,
            Node {
                parent: ROOT_INO,
                name: String::new(),
                kind: Kind::Dir(BTreeMap::new()),
            },
        );
        t.load_dir(src, ROOT_INO)?;
        Ok(t)
    }

    pub(super) fn load_dir(&mut self, dir: &Path, ino: u64) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = if meta.file_type().is_symlink() {
                Kind::Link(std::fs::read_link(&path)?)
            } else if meta.is_dir() {
                Kind::Dir(BTreeMap::new())
            } else if meta.is_file() {
                Kind::File(std::fs::read(&path)?)
            } else {
                // A FIFO or socket (another emulation's bind file): never
                // opened, it would block; served as an empty file.
                Kind::File(Vec::new())
            };
            let child = self.add(ino, &name, kind);
            if meta.is_dir() {
                self.load_dir(&path, child)?;
            }
        }
        Ok(())
    }

    pub(super) fn add(&mut self, parent: u64, name: &str, kind: Kind) -> u64 {
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_owned(),
                kind,
            },
        );
        if let Some(Node {
            kind: Kind::Dir(children),
            ..
        }) = self.nodes.get_mut(&parent)
        {
            children.insert(name.to_owned(), ino);
        }
        ino
    }

    pub(super) fn remove(&mut self, parent: u64, name: &str) {
        let removed = match self.nodes.get_mut(&parent) {
            Some(Node {
                kind: Kind::Dir(children),
                ..
            }) => children.remove(name),
            _ => None,
        };
        if let Some(ino) = removed {
            self.nodes.remove(&ino);
        }
    }

    pub(super) fn child(&self, parent: u64, name: &str) -> Option<u64> {
        match &self.nodes.get(&parent)?.kind {
            Kind::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// A path below the root, components not followed through links.
    pub(super) fn find(&self, rel: &str) -> Option<u64> {
        rel.split('/')
            .filter(|c| !c.is_empty())
            .try_fold(ROOT_INO, |ino, c| self.child(ino, c))
    }

    pub(super) fn path_of(&self, mut ino: u64) -> String {
        let mut parts = Vec::new();
        while ino != ROOT_INO {
            let Some(n) = self.nodes.get(&ino) else { break };
            parts.push(n.name.clone());
            ino = n.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    pub(super) fn attr(&self, ino: u64) -> Option<FileAttr> {
        let n = self.nodes.get(&ino)?;
        let (kind, perm, size) = match &n.kind {
            Kind::Dir(_) => (FileType::Directory, 0o755, 0),
            Kind::File(data) => (FileType::RegularFile, 0o644, data.len() as u64),
            Kind::Link(t) => (FileType::Symlink, 0o777, t.as_os_str().len() as u64),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        })
    }

    /// `bus/usb/devices/<name>` resolved to its directory below the root.
    pub(super) fn device_dir(&self, name: &str) -> Option<String> {
        let ino = self.find(&format!("bus/usb/devices/{name}"))?;
        match &self.nodes.get(&ino)?.kind {
            Kind::Link(t) => {
                let mut parts: Vec<&str> = vec!["bus", "usb", "devices"];
                for c in t.to_str()?.split('/') {
                    match c {
                        ".." => {
                            parts.pop();
                        }
                        "" | "." => {}
                        other => parts.push(other),
                    }
                }
                Some(parts.join("/"))
            }
            Kind::Dir(_) => Some(format!("bus/usb/devices/{name}")),
            Kind::File(_) => None,
        }
    }
}

pub(super) fn up(dir: &str) -> String {
    "../".repeat(dir.split('/').filter(|c| !c.is_empty()).count())
}
