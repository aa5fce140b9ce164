//! The daemon's control socket, `STATE_DIR/daemon.sock` (a Unix stream
//! socket, mode 0600 by the state directory's umask): one request line
//! per connection, one reply, then the daemon closes.
//!
//! - `status` → the [`super::Status`] as one JSON document;
//! - `reload` → `ok`; the rules file is read again and reconciled (the
//!   `usb-rule-*` commands send it after a change).
//!
//! Also the single-instance guard: `STATE_DIR/daemon.lock` is held
//! (`flock`, non-blocking) for the daemon's life; a second daemon on the
//! same state directory fails to start. The kernel drops the lock when the
//! process dies, even by `kill -9`.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Event, Status};
use crate::HostPaths;

/// `STATE_DIR/daemon.sock`.
pub fn socket_path(paths: &HostPaths) -> PathBuf {
    paths.state_dir.join("daemon.sock")
}

/// Take the single-instance lock; `Ok(None)` when another daemon holds it.
pub fn lock_instance(paths: &HostPaths) -> std::io::Result<Option<File>> {
    std::fs::create_dir_all(&paths.state_dir)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.state_dir.join("daemon.lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Bind the control socket and serve it on a thread.
pub fn serve(
    paths: &HostPaths,
    status: Arc<Mutex<Status>>,
    tx: Sender<Event>,
) -> std::io::Result<()> {
    let path = socket_path(paths);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new()
        .stack_size(super::THREAD_STACK)
        .name("vusbd-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => {
                        if let Err(e) = answer(c, &status, &tx) {
                            log::debug!("control connection: {e}");
                        }
                    }
                    Err(e) => log::warn!("control socket: {e}"),
                }
            }
        })?;
    Ok(())
}

fn answer(c: UnixStream, status: &Mutex<Status>, tx: &Sender<Event>) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&c).take(256)).read_line(&mut line)?;
    let reply = match line.trim() {
        "status" => {
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            serde_json::to_string(&s).map_err(std::io::Error::other)?
        }
        "reload" => {
            let _ = tx.send(Event::Reload);
            "ok".to_owned()
        }
        other => format!("error: unknown request {other:?}"),
    };
    (&c).write_all(reply.as_bytes())?;
    (&c).write_all(b"\n")
}

/// Send `request` to the daemon of `paths` and return its reply.
pub fn request(paths: &HostPaths, request: &str) -> std::io::Result<String> {
    request_at(&socket_path(paths), request)
}

fn request_at(path: &Path, request: &str) -> std::io::Result<String> {
    let mut c = UnixStream::connect(path)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(format!("{request}\n").as_bytes())?;
    let mut out = String::new();
    c.take(16 << 20).read_to_string(&mut out)?;
    Ok(out)
}
