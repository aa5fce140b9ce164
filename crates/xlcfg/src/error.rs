//! The crate's error type.
//!
//! Messages of spec errors use xl's own wording (reference §1.7) so users of
//! `xl` recognise them, except for a bad usbdev `type=`, where xl prints the
//! wrong variable (BUG D2) and vusb prints the value the user wrote.

/// Errors of parsing xl configuration text and USB spec strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A usbctrl spec field is not one of the known `KEY=` forms.
    #[error("Unknown string `{token}' in usbctrl spec")]
    UnknownCtrlKey {
        /// The whole field as written.
        token: String,
    },

    /// A usbctrl `type=` value is not a controller type.
    #[error("Invalid usb controller type '{value}'")]
    InvalidCtrlType {
        /// The value after `type=`.
        value: String,
    },

    /// A usbdev spec field is not one of the known `KEY=` forms.
    #[error("Unknown string `{token}' in usbdev spec")]
    UnknownDevKey {
        /// The whole field as written.
        token: String,
    },

    /// A usbdev `type=` value is not a device type.
    #[error("Invalid usb device type: {value}")]
    InvalidDevType {
        /// The value after `type=`.
        value: String,
    },

    /// A usbdev `controller=` or `port=` value is not a number, or not a
    /// usable one (a negative port, a controller below -1, a value beyond
    /// C's `int`). xl reads it with `atoi`, so a typo silently means
    /// "auto"; vusb refuses it.
    #[error("Invalid {key} `{value}' in usbdev spec: {reason}")]
    InvalidDevNumber {
        /// `controller` or `port`.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong (`not a number`, `out of range`...).
        reason: &'static str,
    },

    /// A numeric argument of a command (`usbctrl-detach`'s devid,
    /// `usbdev-detach`'s controller and port) is not a number. xl reads it
    /// with `atoi`, so `nan` or `""` silently means 0 (controller 0 is
    /// removed); vusb refuses it before changing anything.
    #[error("Invalid {what} `{value}': {reason}")]
    InvalidNumberArg {
        /// `devid`, `controller` or `port`.
        what: &'static str,
        /// The argument as written.
        value: String,
        /// What is wrong (`not a number`, `out of range`).
        reason: &'static str,
    },

    /// A value of one of vusb's extension keys is malformed (xl has no such
    /// keys, so there is no xl wording to keep).
    #[error("Invalid value `{value}' for `{key}' in {spec} spec: {expected}")]
    InvalidExtensionValue {
        /// `usbctrl` or `usbdev`.
        spec: &'static str,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What the value should look like.
        expected: &'static str,
    },

    /// The configuration text is not valid xl.cfg syntax.
    #[error("{line}:{col}: {message}")]
    Syntax {
        /// 1-based line.
        line: u32,
        /// 1-based column (in characters).
        col: u32,
        /// What is wrong.
        message: String,
    },

    /// A setting of the configuration has a value xl would reject.
    #[error("{line}:{col}: {message}")]
    Setting {
        /// 1-based line of the setting.
        line: u32,
        /// 1-based column of the offending value.
        col: u32,
        /// What is wrong.
        message: String,
    },

    /// A spec string inside the configuration file is invalid.
    #[error("{line}:{col}: parameter `{key}'")]
    SpecInFile {
        /// The setting (`usbctrl` or `usbdev`).
        key: String,
        /// 1-based line of the list item.
        line: u32,
        /// 1-based column of the list item.
        col: u32,
        /// The spec error.
        #[source]
        source: Box<Error>,
    },

    /// The JSON of a stored configuration does not have libxl's shape.
    #[error("invalid configuration JSON at {path}: expected {expected}")]
    InvalidJson {
        /// Where, as a JSON pointer-like path (`usbdevs[2].ctrl`).
        path: String,
        /// What should have been there.
        expected: &'static str,
    },
}

impl Error {
    /// The position (line, column) in the configuration text, if any.
    pub fn position(&self) -> Option<(u32, u32)> {
        match self {
            Error::Syntax { line, col, .. }
            | Error::Setting { line, col, .. }
            | Error::SpecInFile { line, col, .. } => Some((*line, *col)),
            _ => None,
        }
    }
}

impl Error {
    /// The message for a file named `file`, in the usual compiler form:
    /// `FILE:LINE:COL: message` when the error has a position (a spec
    /// error inside the file shows the spec's own message), else
    /// `FILE: message`.
    pub fn in_file(&self, file: &str) -> String {
        match self {
            Error::Syntax { line, col, message } | Error::Setting { line, col, message } => {
                format!("{file}:{line}:{col}: {message}")
            }
            Error::SpecInFile {
                key,
                line,
                col,
                source,
            } => format!("{file}:{line}:{col}: {source} (in `{key}')"),
            other => format!("{file}: {other}"),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
