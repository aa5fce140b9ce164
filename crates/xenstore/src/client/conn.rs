//! One connection's state behind the client's mutex: the stream, the
//! decoder, queued watch events, the next request id, the timeout, and
//! whether an earlier failure made it unusable ("poisoned").
//!
//! Every wait is bounded: before each read or write the stream is polled
//! with the time left until the request's deadline, so a silent daemon
//! costs at most the timeout. A timeout, a closed stream, an I/O error or a
//! protocol violation poisons the connection: a reply may still be on its
//! way, so later requests could be answered with earlier replies. Daemon
//! errors (`XS_ERROR`) do not poison.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::events::{EventQueue, Popped};
use crate::wire::{Decoder, Message, MsgType, reply};
use crate::{Error, Result, WatchEvent};

/// A byte stream to a daemon: a Unix socket or the xenbus device.
pub(crate) enum Stream {
    Socket(UnixStream),
    Device(File),
}

impl Stream {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Socket(s) => s.as_fd(),
            Stream::Device(f) => f.as_fd(),
        }
    }

    /// Waits until the stream is ready for `flags`, at most until
    /// `deadline`; `Ok(false)` on timeout.
    fn ready(&self, flags: PollFlags, deadline: Instant) -> io::Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::from_borrowed_fd(self.fd(), flags)];
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Socket(s) => s.read(buf),
            Stream::Device(f) => f.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Socket(s) => s.write(buf),
            Stream::Device(f) => f.write(buf),
        }
    }
}

/// Why waiting for input stopped without a message.
enum Fill {
    Data,
    TimedOut,
}

pub(crate) struct Conn {
    stream: Stream,
    decoder: Decoder,
    pub(crate) events: EventQueue,
    next_req_id: u32,
    pub(crate) timeout: Duration,
    pub(crate) relative_ok: bool,
    pub(crate) poisoned: Option<String>,
}

/// What one request is about, for errors and logs.
pub(crate) struct Call<'a> {
    pub(crate) ty: MsgType,
    pub(crate) subject: &'a str,
}

impl Conn {
    pub(crate) fn new(stream: Stream, timeout: Duration) -> Conn {
        let mut conn = Conn {
            stream,
            decoder: Decoder::new(),
            events: EventQueue::new(),
            next_req_id: 1,
            timeout,
            relative_ok: false,
            poisoned: None,
        };
        conn.set_timeout(timeout);
        conn
    }

    /// Sets the request timeout (and a socket's send timeout).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        if let Stream::Socket(s) = &self.stream {
            let send = timeout.max(Duration::from_millis(1));
            if let Err(e) = s.set_write_timeout(Some(send)) {
                log::debug!("xenstore: cannot set the socket send timeout: {e}");
            }
        }
    }

    fn req_id(&mut self) -> u32 {
        let id = self.next_req_id;
        // 0 is what watch events carry: never use it for a request.
        self.next_req_id = self.next_req_id.checked_add(1).unwrap_or(1);
        id
    }

    pub(crate) fn check_usable(&self, op: &'static str) -> Result<()> {
        match &self.poisoned {
            Some(earlier) => Err(Error::Poisoned {
                op,
                earlier: earlier.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, e: Error) -> Result<T> {
        log::debug!("xenstore connection poisoned: {e}");
        self.poisoned = Some(e.to_string());
        Err(e)
    }

    /// Sends `msg` (its request id is set here) and returns the payload of
    /// the matching reply, or the daemon's error.
    pub(crate) fn exchange(&mut self, mut msg: Message, call: &Call<'_>) -> Result<Vec<u8>> {
        let op = call.ty.as_str();
        self.check_usable(op)?;
        let req_id = self.req_id();
        msg.header.req_id = req_id;
        let deadline = Instant::now() + self.timeout;
        log::trace!(
            "xenstore -> {op} id={req_id} tx={} {:?} ({} bytes)",
            msg.header.tx_id,
            call.subject,
            msg.payload.len()
        );
        if let Err(e) = self.send(&msg.encode(), deadline, call) {
            return self.poison(e);
        }
        match self.await_reply(req_id, deadline, call) {
            Ok(Ok(payload)) => Ok(payload),
            Ok(Err(errno)) => Err(Error::Daemon {
                op,
                path: call.subject.to_owned(),
                errno,
            }),
            Err(e) => self.poison(e),
        }
    }

    fn timeout_error(&self, call: &Call<'_>) -> Error {
        Error::Timeout {
            op: call.ty.as_str(),
            path: call.subject.to_owned(),
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn send(&mut self, bytes: &[u8], deadline: Instant, call: &Call<'_>) -> Result<()> {
        let op = call.ty.as_str();
        let io_err = |source| Error::Io { op, source };
        let mut off = 0;
        while off < bytes.len() {
            // A socket's writes are bounded by its send timeout (set with
            // the request timeout), saving a poll per request; the device
            // is polled.
            let is_device = matches!(self.stream, Stream::Device(_));
            if is_device
                && !self
                    .stream
                    .ready(PollFlags::OUT, deadline)
                    .map_err(io_err)?
            {
                return Err(self.timeout_error(call));
            }
            match self.stream.write(&bytes[off..]) {
                Ok(0) => return Err(Error::Closed { op }),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(self.timeout_error(call));
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(Error::Closed { op });
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Ok(())
    }

    /// Reads what is available, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant, op: &'static str) -> Result<Fill> {
        let io_err = |source| Error::Io { op, source };
        if !self.stream.ready(PollFlags::IN, deadline).map_err(io_err)? {
            return Ok(Fill::TimedOut);
        }
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    if self.decoder.buffered() > 0 {
                        log::debug!(
                            "xenstore closed with {} bytes of a message",
                            self.decoder.buffered()
                        );
                    }
                    return Err(Error::Closed { op });
                }
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    return Ok(Fill::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Error::Closed { op });
                }
                Err(e) => return Err(io_err(e)),
            }
        }
    }

    /// The next whole message, waiting at most until `deadline`.
    fn next(&mut self, deadline: Instant, op: &'static str) -> Result<Option<Message>> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(Some(m));
            }
            if let Fill::TimedOut = self.fill(deadline, op)? {
                return Ok(None);
            }
        }
    }

    /// The next queued event, the overflow, or `None` when nothing is
    /// queued.
    fn pop_event(&mut self) -> Option<Result<Option<WatchEvent>>> {
        match self.events.pop() {
            Popped::Event(ev) => Some(Ok(Some(ev))),
            Popped::Overflowed { dropped, discarded } => {
                Some(Err(Error::WatchEventsOverflowed { dropped, discarded }))
            }
            Popped::Empty => None,
        }
    }

    /// Queues a watch event, or says what else `msg` is.
    fn take_event(&mut self, msg: &Message, op: &'static str) -> Result<Option<MsgType>> {
        let ty = msg.msg_type().map_err(|u| Error::Protocol {
            op,
            what: format!("unknown message type {}", u.0),
        })?;
        log::trace!(
            "xenstore <- {ty} id={} tx={} ({} bytes)",
            msg.header.req_id,
            msg.header.tx_id,
            msg.payload.len()
        );
        if ty == MsgType::WatchEvent {
            let ev = reply::parse_watch_event(&msg.payload)?;
            self.events.push(ev);
            return Ok(None);
        }
        Ok(Some(ty))
    }

    /// `Ok(Ok(payload))` for the reply, `Ok(Err(errno))` for `XS_ERROR`.
    fn await_reply(
        &mut self,
        req_id: u32,
        deadline: Instant,
        call: &Call<'_>,
    ) -> Result<std::result::Result<Vec<u8>, crate::Errno>> {
        let op = call.ty.as_str();
        loop {
            let Some(msg) = self.next(deadline, op)? else {
                return Err(self.timeout_error(call));
            };
            let Some(ty) = self.take_event(&msg, op)? else {
                continue;
            };
            if msg.header.req_id != req_id {
                return Err(Error::Protocol {
                    op,
                    what: format!(
                        "reply id {} does not match request id {req_id}",
                        msg.header.req_id
                    ),
                });
            }
            if ty == MsgType::Error {
                return Ok(Err(reply::parse_error(call.ty, &msg.payload)?));
            }
            if ty != call.ty {
                return Err(Error::Protocol {
                    op,
                    what: format!("{ty} reply to a {op} request"),
                });
            }
            return Ok(Ok(msg.payload));
        }
    }

    /// The next watch event, waiting at most `timeout`; `Ok(None)` when
    /// none came. Running out of time here is not a failure.
    /// An overflowed queue is reported here, once
    /// ([`Error::WatchEventsOverflowed`]; the connection stays usable).
    pub(crate) fn wait_event(&mut self, timeout: Duration) -> Result<Option<WatchEvent>> {
        let op = MsgType::WatchEvent.as_str();
        self.check_usable(op)?;
        if let Some(r) = self.pop_event() {
            return r;
        }
        let deadline = Instant::now() + timeout;
        let msg = match self.next(deadline, op) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => return self.poison(e),
        };
        match self.take_event(&msg, op) {
            Ok(None) => self.pop_event().transpose().map(Option::flatten),
            Ok(Some(ty)) => {
                let e = Error::Protocol {
                    op,
                    what: format!("unsolicited {ty} message id {}", msg.header.req_id),
                };
                self.poison(e)
            }
            Err(e) => self.poison(e),
        }
    }
}
