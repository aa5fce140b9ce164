//! Reading the small files vusb is given or keeps — xl config files
//! (`config-show`, `config-apply`, `usb-rule-add --config`), libxl's
//! stored JSON configuration, vusb's saved configuration and its other
//! state files (`crate::statefile`: the rules, the daemon's journal) —
//! bounded, in one place.
//!
//! Each must be a regular file (a symbolic link to one is fine) of at most
//! [`MAX_CONFIG_FILE`] bytes. Anything else is refused before a byte is
//! read, with an error naming what was wrong: a FIFO would block the
//! command forever, `/dev/zero` would be read until the address space ends,
//! a directory cannot be parsed. The file is opened non-blocking and
//! checked with `fstat` on the opened descriptor, so it cannot be swapped
//! for a FIFO between the check and the read, and at most one byte past
//! the limit is ever read even if it grows meanwhile.
//!
//! libxlu reads an xl config file whole without such checks; vusb differs
//! on purpose (issue 10: a FIFO as config file blocked forever).

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The largest config or state file vusb reads: 4 MiB. An xl config file
/// is a few KiB; libxl's stored JSON of a guest with hundreds of devices
/// stays under 1 MiB.
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// Why a file was refused. Carried inside the [`io::Error`] that
/// [`read`] returns (kind `InvalidInput`), so callers keep their own error
/// variant naming the file and action, and the chain prints this reason.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Not a regular file.
    #[error("not a regular file (it is {kind}); a config file must be a regular file")]
    NotRegular {
        /// What it is (`a FIFO`, `a directory`, `a character device`...).
        kind: &'static str,
    },
    /// Larger than the limit.
    #[error("too large: over {limit} bytes (the limit for a config file)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

impl From<Refused> for io::Error {
    fn from(r: Refused) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, r)
    }
}

/// Reads `path` whole if it is a regular file of at most `limit` bytes.
/// `NotFound` and other open errors come back as they are; a refusal as
/// an `InvalidInput` error carrying [`Refused`].
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Refuse by type before opening: opening some devices has effects.
    check_type(&std::fs::metadata(path)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // Check the opened file too: it may have been replaced meanwhile.
    let meta = file.metadata()?;
    check_type(&meta.file_type())?;
    if meta.len() > limit {
        return Err(Refused::TooLarge { limit }.into());
    }
    read_limited(file, limit)
}

/// Reads `reader` to its end, refusing more than `limit` bytes
/// ([`Refused::TooLarge`]) without buffering past the limit. For a stream
/// such as stdin, where the type of the source is not checked.
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(Refused::TooLarge { limit }.into());
    }
    Ok(buf)
}

fn check_type(ft: &std::fs::FileType) -> io::Result<()> {
    if ft.is_file() {
        return Ok(());
    }
    let kind = if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(Refused::NotRegular { kind }.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    fn refusal(e: &io::Error) -> Option<Refused> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Refused>())
            .cloned()
    }

    fn refused(r: io::Result<Vec<u8>>) -> Refused {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        refusal(&e).expect("a Refused inside")
    }

    fn mkfifo(path: &Path) {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(st.success());
    }

    #[test]
    fn regular_file_and_symlink_to_it_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("guest.cfg");
        std::fs::write(&f, "usbctrl = ['version=2']\n").unwrap();
        assert_eq!(read(&f, 100).unwrap(), b"usbctrl = ['version=2']\n");
        let l = d.path().join("link.cfg");
        symlink(&f, &l).unwrap();
        assert_eq!(read(&l, 100).unwrap().len(), 24);
        // Exactly at the limit is fine.
        assert_eq!(read(&f, 24).unwrap().len(), 24);
    }

    #[test]
    fn fifo_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fifo.cfg");
        mkfifo(&p);
        let l = d.path().join("link.cfg");
        symlink(&p, &l).unwrap();
        for path in [&p, &l] {
            let t0 = Instant::now();
            let r = refused(read(path, MAX_CONFIG_FILE));
            assert_eq!(r, Refused::NotRegular { kind: "a FIFO" });
            assert!(t0.elapsed() < Duration::from_secs(1));
        }
    }

    #[test]
    fn dev_zero_and_directory_are_refused() {
        let r = refused(read(Path::new("/dev/zero"), MAX_CONFIG_FILE));
        assert_eq!(
            r,
            Refused::NotRegular {
                kind: "a character device"
            }
        );
        let d = tempfile::tempdir().unwrap();
        let r = refused(read(d.path(), MAX_CONFIG_FILE));
        assert_eq!(
            r,
            Refused::NotRegular {
                kind: "a directory"
            }
        );
        let l = d.path().join("zero");
        symlink("/dev/zero", &l).unwrap();
        let r = refused(read(&l, MAX_CONFIG_FILE));
        assert_eq!(
            r,
            Refused::NotRegular {
                kind: "a character device"
            }
        );
        let e = read(&l, MAX_CONFIG_FILE).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("big.cfg");
        std::fs::write(&f, vec![b'#'; 101]).unwrap();
        assert_eq!(refused(read(&f, 100)), Refused::TooLarge { limit: 100 });
        // A sparse file claiming 10 GiB is refused from its size alone.
        let s = d.path().join("sparse.cfg");
        File::create(&s).unwrap().set_len(10 << 30).unwrap();
        let l = d.path().join("link.cfg");
        symlink(&s, &l).unwrap();
        let t0 = Instant::now();
        assert_eq!(
            refused(read(&l, MAX_CONFIG_FILE)),
            Refused::TooLarge {
                limit: MAX_CONFIG_FILE
            }
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn missing_file_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        let e = read(&d.path().join("absent"), 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(refusal(&e).is_none());
    }

    #[test]
    fn endless_stream_is_cut_at_the_limit() {
        let e = read_limited(io::repeat(0), 1000).unwrap_err();
        assert_eq!(refusal(&e).unwrap(), Refused::TooLarge { limit: 1000 });
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), b"abc");
    }
}
