//! Fuzz the QMP client with arbitrary server bytes: the line decoder, then
//! a whole session (handshake, a command, an event wait, typed queries)
//! against a "server" that sends exactly the input, then a session against
//! a server that repeats the input forever (the size and time bounds must
//! end it). Nothing may panic or hang; every outcome is `Ok` or a typed
//! error.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use vusb_qmp::{Qmp, Stream, message};

struct Scripted(Cursor<Vec<u8>>);

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Hand out small pieces, as a socket may.
        let n = buf.len().min(7);
        self.0.read(&mut buf[..n])
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream for Scripted {
    fn set_read_timeout(&self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server that sends the input over and over, never EOF.
struct Endless {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let take = (self.data.len() - self.pos).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&self.data[self.pos..self.pos + take]);
            self.pos = (self.pos + take) % self.data.len();
            n += take;
        }
        Ok(n)
    }
}

impl Write for Endless {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream for Endless {
    fn set_read_timeout(&self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if !data.is_empty() {
        let t0 = Instant::now();
        let mut q = Qmp::new(Endless {
            data: data.to_vec(),
            pos: 0,
        });
        q.set_timeout(Duration::from_millis(20));
        if q.handshake().is_ok() {
            let _ = q.execute("query-status", None);
        }
        // Bounded: MAX_LINE bytes per message or the 20 ms deadline.
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
    for line in data.split(|b| *b == b'\n') {
        let _ = message::parse(line);
    }
    let mut q = Qmp::new(Scripted(Cursor::new(data.to_vec())));
    if q.handshake().is_err() {
        return;
    }
    let _ = q.execute("query-status", None);
    let _ = q.wait_event(Duration::from_millis(1), |e| e.name == "DEVICE_DELETED");
    let _ = q.peripherals();
    let _ = q.query_pci();
    let _ = q.x_query_usb();
    let _ = q.take_events();
});
