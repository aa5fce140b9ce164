//! Writing to stdout without a broken-pipe error: `vusb usb-list | head`
//! must end quietly.

use std::io::Write;
use std::sync::Mutex;

/// While `Some`, [`out`] collects here instead of writing (`vusb -N
/// --json` puts a command's own output into the plan's document).
static CAPTURED: Mutex<Option<String>> = Mutex::new(None);

/// Collect what [`out`] prints from now on, until [`take_captured`].
pub fn capture() {
    *CAPTURED.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::new());
}

/// Stop collecting; what was collected (`None` when not collecting).
pub fn take_captured() -> Option<String> {
    CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Print `text` to stdout as is. A closed pipe ends the process quietly
/// with status 0, as a filter expects; other write errors are reported.
pub fn out(text: &str) {
    if let Some(buf) = CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        buf.push_str(text);
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("vusb: writing to stdout: {e}");
        std::process::exit(1);
    }
}
