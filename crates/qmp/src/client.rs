//! The QMP transport: greeting, capability negotiation, commands with ids,
//! events queued while waiting for replies, a deadline per command.
//!
//! Bounded against a broken or hostile peer: a line (one message) is at
//! most [`MAX_LINE`] bytes, queued events at most [`MAX_QUEUED_EVENTS`]
//! (and [`MAX_LINE`] bytes), and a deadline bounds the *total* time of an
//! exchange — each read waits only for the time left, so a peer dripping
//! bytes cannot extend it.
//!
//! Generic over any stream that can bound a read ([`Stream`]), so tests
//! drive it over `UnixStream::pair()` with a scripted peer. Blocking I/O
//! with explicit timeouts; no async runtime.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::message::{self, Event, Greeting, Message};

/// libxl's timeout for one QMP operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest line (one QMP message) accepted from the peer: 1 MiB.
///
/// The largest reply vusb asks for — `query-pci` of a guest with a full PCI
/// bus, or `qom-list` of `/machine/peripheral` — is a few tens of KiB, so
/// this leaves a wide margin while keeping a hostile or broken peer (a line
/// that never ends, a reply of hundreds of MiB) from growing vusb's memory:
/// past it the read stops with [`Error::LineTooLong`] and nothing more of
/// the line is buffered.
pub const MAX_LINE: usize = 1 << 20;

/// The most events kept queued while waiting for a reply or for another
/// event: 1024, whose lines add up to at most [`MAX_LINE`] bytes. QEMU
/// sends a handful per hot-plug; a peer that floods events stops the
/// exchange with [`Error::TooManyEvents`] instead of filling memory.
/// Together with [`MAX_LINE`] this bounds a connection's memory.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// A byte stream whose reads can be bounded in time.
pub trait Stream: Read + Write {
    /// Bound the next reads (`None`: block forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()>;
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

/// A QMP connection.
#[derive(Debug)]
pub struct Qmp<S: Stream> {
    reader: BufReader<S>,
    partial: Vec<u8>,
    next_id: u64,
    /// Queued events with the length of the line each came in.
    events: VecDeque<(Event, usize)>,
    /// Sum of those lengths (bounded by [`MAX_LINE`]).
    events_bytes: usize,
    /// Length of the line of the last message read.
    last_line: usize,
    timeout: Duration,
    greeting: Option<Greeting>,
    sent: Option<Vec<String>>,
}

impl<S: Stream> Qmp<S> {
    /// Wrap a connected stream. Call [`Qmp::handshake`] next.
    pub fn new(stream: S) -> Qmp<S> {
        Qmp {
            reader: BufReader::new(stream),
            partial: Vec::new(),
            next_id: 1,
            events: VecDeque::new(),
            events_bytes: 0,
            last_line: 0,
            timeout: DEFAULT_TIMEOUT,
            greeting: None,
            sent: None,
        }
    }

    /// The timeout of each later command (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(1));
    }

    /// The current per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Keep a copy of every line sent from now on (see [`Qmp::sent`]).
    pub fn record_sent(&mut self) {
        self.sent.get_or_insert_with(Vec::new);
    }

    /// The lines sent since [`Qmp::record_sent`], without line ends.
    pub fn sent(&self) -> &[String] {
        self.sent.as_deref().unwrap_or(&[])
    }

    /// The greeting, once [`Qmp::handshake`] has read it.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// Read the greeting and negotiate capabilities (`qmp_capabilities`),
    /// both within one timeout. A peer that sends anything but a QMP
    /// greeting is [`Error::NotQmp`].
    pub fn handshake(&mut self) -> Result<Greeting> {
        let deadline = Instant::now() + self.timeout;
        let greeting = match self.read_message("greeting", deadline) {
            Ok(Message::Greeting(g)) => g,
            Ok(other) => {
                return Err(Error::NotQmp {
                    detail: format!("first message was {other:?}"),
                });
            }
            Err(Error::Malformed { detail, .. }) => return Err(Error::NotQmp { detail }),
            Err(Error::Timeout { .. }) => {
                return Err(Error::NoGreeting {
                    timeout: self.timeout,
                });
            }
            Err(e) => return Err(e),
        };
        log::trace!(
            "qmp greeting: qemu {:?} {}",
            greeting.version,
            greeting.package
        );
        self.greeting = Some(greeting.clone());
        // The greeting and the negotiation share one deadline: a peer that
        // greets slowly does not get a second full timeout.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.execute_with_timeout("qmp_capabilities", None, left)?;
        Ok(greeting)
    }

    /// Run one command with the default timeout and return its `return`
    /// value. Events arriving meanwhile are queued.
    pub fn execute(
        &mut self,
        command: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<Value> {
        let timeout = self.timeout;
        self.execute_with_timeout(command, arguments, timeout)
    }

    /// Run one command with its own timeout.
    pub fn execute_with_timeout(
        &mut self,
        command: &str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id;
        self.next_id += 1;
        self.send(command, arguments, id)?;
        loop {
            match self.read_message(command, deadline) {
                Ok(Message::Return { id: rid, value }) if id_matches(&rid, id) => {
                    log::trace!("qmp <- return of {command} #{id}");
                    return Ok(value);
                }
                Ok(Message::Error {
                    id: rid,
                    class,
                    desc,
                }) if rid.is_none() || id_matches(&rid, id) => {
                    log::trace!("qmp <- error of {command} #{id}: {class}: {desc}");
                    return Err(Error::Qemu {
                        command: command.to_string(),
                        class,
                        desc,
                    });
                }
                Ok(Message::Event(ev)) => {
                    log::trace!("qmp <- event {} {}", ev.name, ev.data);
                    self.queue_event(command, ev)?;
                }
                Ok(Message::Greeting(_)) => {
                    return Err(Error::Malformed {
                        command: command.to_string(),
                        detail: "a second greeting".to_string(),
                    });
                }
                Ok(stale) => log::debug!("qmp: dropping a reply to an earlier command: {stale:?}"),
                Err(Error::Timeout { .. }) => {
                    return Err(Error::Timeout {
                        command: command.to_string(),
                        timeout,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait up to `timeout` for an event accepted by `want`, looking first
    /// at the events already queued. `Ok(None)`: none came in time. Other
    /// queued events stay queued.
    pub fn wait_event(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Event) -> bool,
    ) -> Result<Option<Event>> {
        if let Some(pos) = self.events.iter().position(|(ev, _)| want(ev)) {
            return Ok(self.events.remove(pos).map(|(ev, len)| {
                self.events_bytes -= len;
                ev
            }));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_message("event", deadline) {
                Ok(Message::Event(ev)) => {
                    log::trace!("qmp <- event {} {}", ev.name, ev.data);
                    if want(&ev) {
                        return Ok(Some(ev));
                    }
                    self.queue_event("event", ev)?;
                }
                Ok(other) => log::debug!("qmp: dropping an unsolicited message: {other:?}"),
                Err(Error::Timeout { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Take every queued event.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events_bytes = 0;
        self.events.drain(..).map(|(ev, _)| ev).collect()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.reader.get_ref()
    }

    fn send(
        &mut self,
        command: &str,
        arguments: Option<Map<String, Value>>,
        id: u64,
    ) -> Result<()> {
        // libxl's key order: execute, id, arguments.
        let mut msg = Map::new();
        msg.insert("execute".into(), Value::from(command));
        msg.insert("id".into(), Value::from(id));
        if let Some(args) = arguments {
            msg.insert("arguments".into(), Value::Object(args));
        }
        let line = Value::Object(msg).to_string();
        log::trace!("qmp -> {line}");
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let stream = self.reader.get_mut();
        let res = stream.write_all(&bytes).and_then(|()| stream.flush());
        if let Some(sent) = self.sent.as_mut() {
            sent.push(line);
        }
        res.map_err(|source| match source.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected => {
                Error::Closed {
                    command: command.to_string(),
                }
            }
            _ => Error::Send {
                command: command.to_string(),
                source,
            },
        })
    }

    /// Read one complete message, or fail at `deadline`.
    fn read_message(&mut self, what: &str, deadline: Instant) -> Result<Message> {
        loop {
            let line = self.read_line(what, deadline)?;
            self.last_line = line.len();
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            return message::parse(trimmed).map_err(|detail| Error::Malformed {
                command: what.to_string(),
                detail,
            });
        }
    }

    /// Read one line (up to and including `\n`), bounded in size by
    /// [`MAX_LINE`] and in total time by `deadline`: each read waits at
    /// most the time left, and the deadline is checked between reads, so a
    /// peer dripping one byte at a time cannot stretch the wait.
    fn read_line(&mut self, what: &str, deadline: Instant) -> Result<Vec<u8>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    command: what.to_string(),
                    timeout: Duration::ZERO,
                });
            }
            if self.reader.buffer().is_empty() {
                // The next fill reads the socket: wait only the time left.
                let remaining = (deadline - now).max(Duration::from_millis(1));
                self.reader
                    .get_ref()
                    .set_read_timeout(Some(remaining))
                    .map_err(Error::SetTimeout)?;
            }
            let available = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => match e.kind() {
                    ErrorKind::Interrupted => continue,
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                        return Err(Error::Timeout {
                            command: what.to_string(),
                            timeout: Duration::ZERO,
                        });
                    }
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                        return Err(Error::Closed {
                            command: what.to_string(),
                        });
                    }
                    _ => {
                        return Err(Error::Receive {
                            command: what.to_string(),
                            source: e,
                        });
                    }
                },
            };
            if available.is_empty() {
                // EOF, possibly after bytes without a newline.
                return Err(Error::Closed {
                    command: what.to_string(),
                });
            }
            let (take, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if self.partial.len() + take > MAX_LINE {
                let received = self.partial.len() + take;
                // Drop what was read: the connection is unusable anyway,
                // and the memory must not stay held.
                self.partial = Vec::new();
                self.reader.consume(take);
                return Err(Error::LineTooLong {
                    command: what.to_string(),
                    limit: MAX_LINE,
                    received,
                });
            }
            self.partial.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if complete {
                return Ok(std::mem::take(&mut self.partial));
            }
        }
    }

    /// Queue the event just read while waiting for something else,
    /// within [`MAX_QUEUED_EVENTS`] and [`MAX_LINE`] bytes.
    fn queue_event(&mut self, what: &str, ev: Event) -> Result<()> {
        let len = self.last_line;
        if self.events.len() >= MAX_QUEUED_EVENTS || self.events_bytes + len > MAX_LINE {
            return Err(Error::TooManyEvents {
                command: what.to_string(),
                limit: MAX_QUEUED_EVENTS,
                bytes: MAX_LINE,
            });
        }
        self.events_bytes += len;
        self.events.push_back((ev, len));
        Ok(())
    }
}

impl Qmp<UnixStream> {
    /// Connect to a QMP Unix socket, read the greeting and negotiate, each
    /// step bounded by `timeout` (also kept as the per-command timeout).
    pub fn connect(path: &std::path::Path, timeout: Duration) -> Result<Qmp<UnixStream>> {
        let stream = connect_unix(path, timeout)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(Error::SetTimeout)?;
        let mut qmp = Qmp::new(stream);
        qmp.set_timeout(timeout);
        qmp.handshake()?;
        Ok(qmp)
    }
}

/// Connect, retrying while the listen queue is full (`ECONNREFUSED` /
/// `EAGAIN` on a Unix socket): QEMU serves one QMP client at a time and
/// its backlog is short, so a client that just left may still hold the
/// slot. libxl retries the same way. A missing socket fails at once.
pub fn connect_unix(path: &std::path::Path, timeout: Duration) -> Result<UnixStream> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(Error::NotASocket {
            path: path.to_path_buf(),
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::WouldBlock
                ) && Instant::now() < deadline =>
            {
                log::trace!("qmp: {}: {e}, retrying", path.display());
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(Error::Connect {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn id_matches(rid: &Option<Value>, id: u64) -> bool {
    rid.as_ref().and_then(Value::as_u64) == Some(id)
}
