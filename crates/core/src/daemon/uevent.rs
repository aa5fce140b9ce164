//! Host USB hot-plug as the kernel reports it: uevents, read from a
//! `NETLINK_KOBJECT_UEVENT` socket (kernel multicast group 1) through the
//! safe `nix` API, or — for tests and the simulated host — from a Unix
//! datagram socket carrying the very same message format.
//!
//! A kernel uevent is one datagram: `ACTION@DEVPATH\0` followed by
//! `KEY=VALUE\0` pairs (`ACTION`, `DEVPATH`, `SUBSYSTEM`, `DEVTYPE`,
//! `BUSNUM`, `DEVNUM`, `PRODUCT`, ...). Only USB *devices* matter to the
//! daemon (`SUBSYSTEM=usb`, `DEVTYPE=usb_device`): interface events are
//! what the daemon's own driver rebinding causes, and must not wake it.

use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc::Sender;

use super::Event;

/// One uevent, reduced to what the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `bind`, `unbind`, `change`, ...
    pub action: String,
    /// `DEVPATH`, e.g. `/devices/pci0000:00/0000:00:14.0/usb1/1-1`.
    pub devpath: String,
    /// `SUBSYSTEM`.
    pub subsystem: String,
    /// `DEVTYPE` (`usb_device`, `usb_interface`), empty when absent.
    pub devtype: String,
}

impl Uevent {
    /// Parse one datagram; `None` for anything that is not a kernel
    /// uevent (e.g. udev's `libudev` re-broadcasts).
    pub fn parse(buf: &[u8]) -> Option<Uevent> {
        let mut parts = buf.split(|b| *b == 0);
        let head = std::str::from_utf8(parts.next()?).ok()?;
        head.split_once('@')?;
        let mut ev = Uevent {
            action: String::new(),
            devpath: String::new(),
            subsystem: String::new(),
            devtype: String::new(),
        };
        for p in parts {
            let Ok(kv) = std::str::from_utf8(p) else {
                continue;
            };
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "ACTION" => ev.action = v.to_owned(),
                "DEVPATH" => ev.devpath = v.to_owned(),
                "SUBSYSTEM" => ev.subsystem = v.to_owned(),
                "DEVTYPE" => ev.devtype = v.to_owned(),
                _ => {}
            }
        }
        (!ev.action.is_empty() && !ev.devpath.is_empty()).then_some(ev)
    }

    /// The message as the kernel sends it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}@{}\0", self.action, self.devpath).into_bytes();
        for (k, v) in [
            ("ACTION", &self.action),
            ("DEVPATH", &self.devpath),
            ("SUBSYSTEM", &self.subsystem),
            ("DEVTYPE", &self.devtype),
        ] {
            out.extend_from_slice(format!("{k}={v}\0").as_bytes());
        }
        out
    }

    /// A USB device event (`usb` / `usb_device`).
    pub fn for_device(action: &str, devpath: &str) -> Uevent {
        Uevent {
            action: action.to_owned(),
            devpath: devpath.to_owned(),
            subsystem: "usb".to_owned(),
            devtype: "usb_device".to_owned(),
        }
    }

    /// Whether this concerns a whole USB device.
    pub fn is_usb_device(&self) -> bool {
        self.subsystem == "usb" && self.devtype == "usb_device"
    }

    /// The device's sysfs name (last component of `DEVPATH`).
    pub fn busid(&self) -> &str {
        self.devpath.rsplit('/').next().unwrap_or_default()
    }
}

/// Where uevents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UeventSource {
    /// The kernel (`NETLINK_KOBJECT_UEVENT`).
    Netlink,
    /// A Unix datagram socket the daemon binds at this path (tests, the
    /// simulated host: `vusb sim plug|unplug` sends there).
    Socket(std::path::PathBuf),
    /// None (xenstore events only).
    None,
}

impl UeventSource {
    /// The value of the daemon's `--uevents` option: `netlink`, `none` or
    /// `unix:PATH`; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "netlink" => Some(UeventSource::Netlink),
            "none" => Some(UeventSource::None),
            v => v
                .strip_prefix("unix:")
                .filter(|p| !p.is_empty())
                .map(|p| UeventSource::Socket(p.into())),
        }
    }
}

fn forward(recv: impl Fn(&mut [u8]) -> std::io::Result<usize>, tx: &Sender<Event>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match recv(&mut buf) {
            Ok(n) => {
                if let Some(ev) = Uevent::parse(&buf[..n])
                    && ev.is_usb_device()
                {
                    log::trace!("uevent {} {}", ev.action, ev.devpath);
                    if tx.send(Event::Uevent(ev)).is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::error!("reading uevents: {e}; hot-plug is no longer watched");
                let _ = tx.send(Event::Failed(format!("uevent source: {e}")));
                return;
            }
        }
    }
}

/// Start the reader thread of `source`, sending USB device events to `tx`.
pub fn spawn(source: &UeventSource, tx: Sender<Event>) -> std::io::Result<()> {
    match source {
        UeventSource::None => Ok(()),
        UeventSource::Socket(path) => {
            let _ = std::fs::remove_file(path);
            let sock = UnixDatagram::bind(path)?;
            std::thread::Builder::new()
                .stack_size(super::THREAD_STACK)
                .name("vusbd-uevent".into())
                .spawn(move || forward(|b| sock.recv(b), &tx))?;
            Ok(())
        }
        UeventSource::Netlink => {
            use nix::sys::socket::{
                AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv,
                socket,
            };
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkKObjectUEvent,
            )
            .map_err(std::io::Error::from)?;
            // Group 1: the kernel's own messages (not udev's).
            bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1)).map_err(std::io::Error::from)?;
            std::thread::Builder::new()
                .stack_size(super::THREAD_STACK)
                .name("vusbd-uevent".into())
                .spawn(move || {
                    forward(
                        |b| recv(fd.as_raw_fd(), b, MsgFlags::empty()).map_err(Into::into),
                        &tx,
                    )
                })?;
            Ok(())
        }
    }
}

/// Send `ev` to a daemon listening on `path` ([`UeventSource::Socket`]).
/// `Ok(false)` when nothing listens there.
pub fn send(path: &Path, ev: &Uevent) -> std::io::Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let sock = UnixDatagram::unbound()?;
    match sock.send_to(&ev.encode(), path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uevents_option_values() {
        assert_eq!(UeventSource::parse("netlink"), Some(UeventSource::Netlink));
        assert_eq!(UeventSource::parse("none"), Some(UeventSource::None));
        assert_eq!(
            UeventSource::parse("unix:/run/x.sock"),
            Some(UeventSource::Socket("/run/x.sock".into()))
        );
        for bad in ["", "unix:", "Netlink", "unix", "tcp:1"] {
            assert_eq!(UeventSource::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn kernel_messages_parse_and_round_trip() {
        let raw = b"bind@/devices/pci0000:00/0000:00:14.0/usb1/1-1\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-1\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0DRIVER=usb\0BUSNUM=001\0";
        let ev = Uevent::parse(raw).unwrap();
        assert_eq!(ev.action, "bind");
        assert_eq!(ev.busid(), "1-1");
        assert!(ev.is_usb_device());
        assert_eq!(Uevent::parse(&ev.encode()).unwrap(), ev);
        let intf = Uevent {
            devtype: "usb_interface".into(),
            ..ev.clone()
        };
        assert!(!intf.is_usb_device());
        assert_eq!(Uevent::parse(b"libudev\0\xfe\xed"), None);
        assert_eq!(Uevent::parse(b""), None);
        assert_eq!(Uevent::parse(b"add@/x\0SUBSYSTEM=usb\0"), None);
    }

    #[test]
    fn the_kernel_source_opens() {
        let (tx, _rx) = std::sync::mpsc::channel();
        match spawn(&UeventSource::Netlink, tx) {
            Ok(()) => {}
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIP: NETLINK_KOBJECT_UEVENT socket: {e}");
            }
            Err(e) => panic!("NETLINK_KOBJECT_UEVENT socket under CI: {e}"),
        }
    }

    #[test]
    fn the_socket_source_delivers_device_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uevent.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(&UeventSource::Socket(path.clone()), tx).unwrap();
        let mut intf = Uevent::for_device("bind", "/devices/usb1/1-1/1-1:1.0");
        intf.devtype = "usb_interface".into();
        assert!(send(&path, &intf).unwrap());
        assert!(send(&path, &Uevent::for_device("add", "/devices/usb1/1-2")).unwrap());
        match rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap() {
            Event::Uevent(ev) => assert_eq!(ev.busid(), "1-2"),
            other => panic!("{other:?}"),
        }
        assert!(!send(&dir.path().join("nobody"), &intf).unwrap());
    }
}
