//! systemd's readiness protocol without libsystemd: one datagram
//! (`READY=1`, `STATUS=...`, `STOPPING=1`) to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`).
//! Nothing happens when the variable is unset (not run by systemd).

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Send `state` to `$NOTIFY_SOCKET`; `Ok(false)` when there is none.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &target)?;
    }
    Ok(true)
}
