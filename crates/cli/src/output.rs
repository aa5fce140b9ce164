//! Writing to stdout without a broken-pipe error: `vusb usb-list | head`
//! must end quietly.

use std::io::Write;

/// Print `text` to stdout as is. A closed pipe ends the process quietly
/// with status 0, as a filter expects; other write errors are reported.
pub fn out(text: &str) {
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
