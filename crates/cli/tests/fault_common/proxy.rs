//! A xenstore proxy that loses the answer of one `TRANSACTION_END` (the
//! `nth` seen, counting from 1 over every connection): the client's
//! connection is cut right there, so the client cannot know whether its
//! transaction committed (as after a timeout, the connection is
//! unusable). The transaction itself either reaches xenstored at once
//! ([`Commit::Now`]) or is held until [`HoldingProxy::release`]
//! ([`Commit::Later`]: it commits after the client ran its error path).
//! Everything else is forwarded as is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TRANSACTION_END: u32 = 7;
const ERROR: u32 = 16;

/// When the lost `TRANSACTION_END` reaches xenstored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Forwarded at once; only the reply is lost.
    Now,
    /// Held until [`HoldingProxy::release`].
    Later,
}

#[derive(Default)]
struct Shared {
    seen: AtomicUsize,
    held: Mutex<Option<(UnixStream, Vec<u8>)>>,
    /// The request id whose answer is wanted.
    watched: Mutex<Option<u32>>,
    /// xenstored's answer to it.
    reply: Mutex<Option<String>>,
}

/// The proxy; its socket is [`HoldingProxy::path`].
pub struct HoldingProxy {
    path: PathBuf,
    shared: Arc<Shared>,
}

impl HoldingProxy {
    /// Listen at `path`, forward to the daemon at `upstream`, lose the
    /// answer of the `nth` `TRANSACTION_END`.
    pub fn start(path: &Path, upstream: &Path, nth: usize, commit: Commit) -> HoldingProxy {
        let listener = UnixListener::bind(path).unwrap();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let up = upstream.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = UnixStream::connect(&up) else {
                    return;
                };
                let sh = sh.clone();
                std::thread::spawn(move || forward(client, server, &sh, nth, commit));
            }
        });
        HoldingProxy {
            path: path.to_owned(),
            shared,
        }
    }

    /// The proxy's socket (`XENSTORED_PATH` for the client).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Send a held `TRANSACTION_END` now ([`Commit::Later`]); then, or for
    /// [`Commit::Now`], xenstored's answer: `"OK"` or an errno such as
    /// `"EAGAIN"`; `None` when the `nth` `TRANSACTION_END` never came.
    pub fn release(&self) -> Option<String> {
        if let Some((mut server, msg)) = self.shared.held.lock().unwrap().take() {
            server.write_all(&msg).ok()?;
        }
        self.shared.watched.lock().unwrap().as_ref()?;
        for _ in 0..200 {
            if let Some(r) = self.shared.reply.lock().unwrap().clone() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some("no answer within 2 s".to_owned())
    }
}

/// Split whole messages off `pending`.
fn messages(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while pending.len() >= 16 {
        let len = 16 + u32::from_le_bytes(pending[12..16].try_into().unwrap()) as usize;
        if pending.len() < len {
            break;
        }
        out.push(pending.drain(..len).collect());
    }
    out
}

fn word(msg: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(msg[i..i + 4].try_into().unwrap())
}

fn forward(
    mut client: UnixStream,
    server: UnixStream,
    sh: &Arc<Shared>,
    nth: usize,
    commit: Commit,
) {
    let cut = Arc::new(AtomicBool::new(false));
    let mut down = server.try_clone().unwrap();
    let mut back = client.try_clone().unwrap();
    let (sh2, cut2) = (sh.clone(), cut.clone());
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = down.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            for msg in messages(&mut pending) {
                if cut2.load(Ordering::SeqCst) {
                    if *sh2.watched.lock().unwrap() == Some(word(&msg, 4)) {
                        let answer = match word(&msg, 0) {
                            ERROR => String::from_utf8_lossy(&msg[16..])
                                .trim_end_matches('\0')
                                .to_owned(),
                            _ => "OK".to_owned(),
                        };
                        *sh2.reply.lock().unwrap() = Some(answer);
                    }
                } else {
                    let _ = back.write_all(&msg);
                }
            }
        }
    });
    let mut up = server;
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        for msg in messages(&mut pending) {
            let lose = word(&msg, 0) == TRANSACTION_END
                && sh.seen.fetch_add(1, Ordering::SeqCst) + 1 == nth;
            if !lose {
                if up.write_all(&msg).is_err() {
                    return;
                }
                continue;
            }
            cut.store(true, Ordering::SeqCst);
            *sh.watched.lock().unwrap() = Some(word(&msg, 4));
            match commit {
                Commit::Now => {
                    let _ = up.write_all(&msg);
                }
                // The held handle keeps the connection, and so the
                // transaction, open in xenstored.
                Commit::Later => *sh.held.lock().unwrap() = Some((up.try_clone().unwrap(), msg)),
            }
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
}
