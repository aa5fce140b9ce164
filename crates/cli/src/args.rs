//! Arguments as the OS gives them: text where text is needed (a clear
//! error, never a panic, for bytes that are not UTF-8), `-h`/`--help`
//! detection, and "did you mean" suggestions.

use std::ffi::OsString;
use std::process::ExitCode;

/// The arguments as text; a non-UTF-8 one is refused (exit 1, as xl
/// refuses a domain it cannot find) with the argument shown escaped.
pub fn utf8(args: &[OsString]) -> Result<Vec<String>, ExitCode> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            a.to_str().map(str::to_owned).ok_or_else(|| {
                eprintln!(
                    "vusb: argument {} ({a:?}) is not valid UTF-8: domain names, selectors and numbers must be text",
                    i + 1
                );
                ExitCode::FAILURE
            })
        })
        .collect()
}

/// Whether the first argument asks for help.
pub fn asks_help(args: &[OsString]) -> bool {
    args.first().is_some_and(|a| a == "-h" || a == "--help")
}

/// `; did you mean X?` for the candidate closest to `typed`, or nothing
/// when none is close (edit distance at most a third of the length, or a
/// prefix match either way).
pub fn suggestion(typed: &str, candidates: &[String]) -> String {
    let best = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(typed, c), c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= (c.len().max(3)) / 3 => format!("; did you mean `{c}`?"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn suggestions_are_close_ones_only() {
        let names: Vec<String> = crate::cli::command_names();
        assert_eq!(suggestion("usb-lsit", &names), "; did you mean `usb-list`?");
        assert_eq!(
            suggestion("usbdev-atach", &names),
            "; did you mean `usbdev-attach`?"
        );
        assert_eq!(suggestion("frobnicate", &names), "");
    }

    #[test]
    fn non_utf8_is_refused_not_panicked() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"a\xffb".to_vec());
        assert!(utf8(&[OsString::from("x"), bad]).is_err());
        assert_eq!(utf8(&[OsString::from("x")]).unwrap(), vec!["x"]);
    }
}
