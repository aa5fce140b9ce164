//! Serves a [`MemStore`] on a Unix socket with the xenstore wire protocol,
//! so any client (vusb's own, libxenstore's `xenstore-*` tools, `xl`) talks
//! to it exactly as to xenstored.
//!
//! One thread per connection, blocking I/O, plus one thread per connection
//! pushing watch events as they happen. Every request type of `xs_wire.h`
//! is answered as the C xenstored 4.17 answers it (`XS_ERROR` replies with
//! the errno name, `ENOSYS` for an unknown type, a connection dropped on a
//! payload over 4096 bytes); `docs/xenstore-memstore.md` lists the details.
//!
//! Connections act as dom0 (privileged), like xenstored's socket. For tests
//! that need an unprivileged guest, [`Server::domid`] makes a server (on
//! its own socket, sharing the store) whose connections act as that
//! domain, the memory equivalent of a guest's ring connection to the real
//! daemon; an in-process [`MemStore::connect`] is the other way.

mod conn;
mod request;

use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::DomId;
use crate::mem::MemStore;

/// A server for one store on one socket.
#[derive(Debug, Clone)]
pub struct Server {
    store: MemStore,
    domid: DomId,
}

/// A running [`Server::spawn`]: stops (closing every connection and
/// removing the socket) on [`ServerHandle::stop`] or drop.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    streams: Streams,
    thread: Option<JoinHandle<()>>,
}

/// The open connections of a spawned server, to close them on stop.
type Streams = Arc<Mutex<HashMap<u64, UnixStream>>>;

impl Server {
    /// A server of `store` whose connections act as dom0.
    pub fn new(store: MemStore) -> Server {
        Server { store, domid: 0 }
    }

    /// Connections act as domain `domid` instead (unprivileged unless 0).
    pub fn domid(mut self, domid: DomId) -> Server {
        self.domid = domid;
        self
    }

    /// The store served.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    fn bind(path: &Path) -> io::Result<UnixListener> {
        match std::fs::remove_file(path) {
            Ok(()) => log::debug!("removed stale socket {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        UnixListener::bind(path)
    }

    /// Serves on `socket_path` in the calling thread, forever (until the
    /// listener fails). A stale socket file there is replaced.
    pub fn serve(self, socket_path: &Path) -> io::Result<()> {
        let listener = Server::bind(socket_path)?;
        log::info!("xenstore memory server on {}", socket_path.display());
        for stream in listener.incoming() {
            let stream = stream?;
            let (store, domid) = (self.store.clone(), self.domid);
            std::thread::spawn(move || conn::serve(store, domid, stream));
        }
        Ok(())
    }

    /// Serves on `socket_path` in background threads.
    pub fn spawn(self, socket_path: &Path) -> io::Result<ServerHandle> {
        let listener = Server::bind(socket_path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let streams: Streams = Arc::default();
        let thread = {
            let (stop, streams) = (Arc::clone(&stop), Arc::clone(&streams));
            std::thread::spawn(move || self.accept_loop(&listener, &stop, &streams))
        };
        Ok(ServerHandle {
            path: socket_path.to_owned(),
            stop,
            streams,
            thread: Some(thread),
        })
    }

    fn accept_loop(&self, listener: &UnixListener, stop: &AtomicBool, streams: &Streams) {
        for (key, stream) in (0u64..).zip(listener.incoming()) {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("xenstore server: accept failed: {e}");
                    continue;
                }
            };
            if let Ok(clone) = stream.try_clone() {
                lock(streams).insert(key, clone);
            }
            let (store, domid) = (self.store.clone(), self.domid);
            let streams = Arc::clone(streams);
            std::thread::spawn(move || {
                conn::serve(store, domid, stream);
                lock(&streams).remove(&key);
            });
        }
    }
}

impl ServerHandle {
    /// The socket clients connect to (`XENSTORED_PATH`).
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, closes every connection, removes the socket.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if that fails the thread is left to
        // end with the process rather than waited for forever.
        match UnixStream::connect(&self.path) {
            Ok(_) => {
                if thread.join().is_err() {
                    log::warn!("xenstore server: accept thread panicked");
                }
            }
            Err(e) => log::debug!("xenstore server: wake-up connect failed: {e}"),
        }
        for (_, s) in lock(&self.streams).drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock(streams: &Streams) -> std::sync::MutexGuard<'_, HashMap<u64, UnixStream>> {
    streams.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};

    use super::*;
    use crate::client::Client;
    use crate::{TxId, Xenstore, XenstoreWatch};

    fn socket(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vxsrv{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("socket")
    }

    #[test]
    fn stop_closes_connections_and_removes_the_socket() {
        let path = socket("stop");
        let store = MemStore::new();
        let mut h = Server::new(store.clone()).spawn(&path).unwrap();
        let c = Client::connect(&path).unwrap();
        c.write(TxId::NONE, "/a", b"1").unwrap();
        assert_eq!(store.connect(0).read(TxId::NONE, "/a").unwrap(), b"1");
        h.stop();
        assert!(!path.exists());
        assert!(c.read(TxId::NONE, "/a").is_err(), "connection closed");
        assert!(Client::connect(&path).is_err());
    }

    #[test]
    fn guest_server_acts_as_its_domain_and_events_are_pushed() {
        let path = socket("guest");
        let store = MemStore::new();
        let _h = Server::new(store.clone()).spawn(&path).unwrap();
        let gpath = path.with_file_name("socket-domid-3");
        let _g = Server::new(store.clone()).domid(3).spawn(&gpath).unwrap();
        let dom0 = store.connect(0);
        dom0.write(TxId::NONE, "/priv", b"x").unwrap();
        let g = Client::connect(&gpath).unwrap();
        let e = g.read(TxId::NONE, "/priv").unwrap_err();
        assert_eq!(e.errno(), Some(crate::Errno::EACCES));
        let c = Client::connect(&path).unwrap();
        c.watch("/w", "t").unwrap();
        assert_eq!(
            c.wait_event(std::time::Duration::from_secs(2))
                .unwrap()
                .unwrap()
                .path,
            "/w"
        );
        dom0.write(TxId::NONE, "/w/x", b"").unwrap();
        let ev = c
            .wait_event(std::time::Duration::from_secs(2))
            .unwrap()
            .unwrap();
        assert_eq!(ev.path, "/w/x", "event from another connection pushed");
    }

    #[test]
    fn unknown_type_is_enosys_and_oversized_drops() {
        let path = socket("raw");
        let _h = Server::new(MemStore::new()).spawn(&path).unwrap();
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(&[99, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        let mut reply = [0u8; 16 + 7];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[0], 16, "XS_ERROR");
        assert_eq!(reply[4], 7, "request id echoed");
        assert_eq!(&reply[16..], b"ENOSYS\0");
        s.write_all(&[2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 16, 0, 0])
            .unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "closed without a reply");
    }

    #[test]
    fn garbage_requests_get_answers_and_never_stop_the_server() {
        let path = socket("garbage");
        let _h = Server::new(MemStore::new()).spawn(&path).unwrap();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let words = [
            "/a",
            "/a/b",
            "x",
            "@releaseDomain",
            "T",
            "F",
            "5",
            "n0",
            "b5",
            "",
            "//",
        ];
        for id in 1..=500u32 {
            let ty = (next() % 26) as u32;
            let mut payload = Vec::new();
            for _ in 0..next() % 4 {
                payload.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
                if next() % 5 != 0 {
                    payload.push(0);
                }
            }
            if next() % 7 == 0 {
                payload.extend((0..next() % 64).map(|_| next() as u8));
            }
            let tx = if next() % 4 == 0 {
                (next() % 3) as u32
            } else {
                0
            };
            let mut msg = Vec::new();
            for v in [ty, id, tx, payload.len() as u32] {
                msg.extend_from_slice(&v.to_le_bytes());
            }
            msg.extend_from_slice(&payload);
            s.write_all(&msg).unwrap();
            // Read until the reply to `id` (watch events may come first).
            loop {
                let mut h = [0u8; 16];
                s.read_exact(&mut h).expect("a reply to every request");
                let len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
                let mut body = vec![0u8; len];
                s.read_exact(&mut body).unwrap();
                let rid = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
                if rid == id {
                    break;
                }
                assert_eq!(rid, 0, "only watch events besides the reply");
            }
        }
        let c = Client::connect(&path).unwrap();
        c.write(TxId::NONE, "/still", b"alive").unwrap();
        assert_eq!(c.read(TxId::NONE, "/still").unwrap(), b"alive");
    }
}
