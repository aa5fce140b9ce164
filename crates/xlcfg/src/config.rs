//! The parsed xl configuration: settings, values, and getters that read
//! them the way libxlu's `xlu_cfg_get_*` functions do (`libxlu_cfg.c`),
//! warnings included.
//!
//! As in libxlu, a number is only text: `memory = 0x100` stores `"0x100"`,
//! and a getter converts it when asked. A name set twice keeps its last
//! value; `+=` concatenates with the previous value of the same name
//! (strings joined, lists appended) and is already applied here.

use crate::cnum::{StrtolError, strtol0_full};
use crate::lexer::Pos;

/// A value: an atom (quoted string or number, which libxlu does not
/// distinguish) or a list, which may nest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where it starts (the opening quote, first digit, or `[`).
    pub pos: Pos,
}

/// The two kinds of value libxlu knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A string or number.
    Atom {
        /// The text (unescaped for strings, as written for numbers).
        text: String,
        /// Whether it was written quoted (kept only to write it back).
        quoted: bool,
    },
    /// `[ … ]`.
    List(Vec<Value>),
}

impl Value {
    /// The text of an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Atom { text, .. } => Some(text),
            ValueKind::List(_) => None,
        }
    }

    /// The items of a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::List(items) => Some(items),
            ValueKind::Atom { .. } => None,
        }
    }
}

/// `=` or `+=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `NAME = VALUE`.
    Assign,
    /// `NAME += VALUE`.
    Add,
}

/// One `NAME = VALUE` statement (after `+=` concatenation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The name.
    pub name: String,
    /// The value.
    pub value: Value,
    /// How it was set.
    pub op: Op,
    /// Where the name starts.
    pub name_pos: Pos,
}

impl Setting {
    /// libxlu's line of a setting: the line its value starts on.
    pub fn line(&self) -> u32 {
        self.value.pos.line
    }
}

/// A warning in libxlu's words; xl prints it as `FILE:LINE: warning: …`
/// and carries on without the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Line of the setting (or value) concerned.
    pub line: u32,
    /// Column where known.
    pub col: Option<u32>,
    /// The text after `warning: `.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.col {
            Some(col) => write!(f, "{}:{}: warning: {}", self.line, col, self.message),
            None => write!(f, "{}: warning: {}", self.line, self.message),
        }
    }
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Every statement in file order (a name may appear more than once).
    pub settings: Vec<Setting>,
}

impl Config {
    /// The setting in force for `name` (the last one), as libxlu's `find`.
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    /// Names in order of first appearance, each once.
    pub fn names(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.settings {
            if !seen.contains(&s.name.as_str()) {
                seen.push(&s.name);
            }
        }
        seen
    }

    /// `xlu_cfg_get_string`: a single value; a list is a warning.
    pub fn get_string(&self, name: &str) -> Result<Option<&str>, Warning> {
        let Some(set) = self.get(name) else {
            return Ok(None);
        };
        match &set.value.kind {
            ValueKind::Atom { text, .. } => Ok(Some(text)),
            ValueKind::List(_) => Err(Warning {
                line: set.line(),
                col: None,
                message: format!("parameter `{name}' is a list but should be a single value"),
            }),
        }
    }

    /// `xlu_cfg_get_list`: a list; a single value is a warning.
    pub fn get_list(&self, name: &str) -> Result<Option<(&Setting, &[Value])>, Warning> {
        let Some(set) = self.get(name) else {
            return Ok(None);
        };
        match &set.value.kind {
            ValueKind::List(items) => Ok(Some((set, items))),
            ValueKind::Atom { .. } => Err(Warning {
                line: set.line(),
                col: None,
                message: format!("parameter `{name}' is a single value but should be a list"),
            }),
        }
    }

    /// `xlu_cfg_get_long`: a whole `strtol(…, 0)` number; `+=`, garbage
    /// and overflow are warnings.
    pub fn get_long(&self, name: &str) -> Result<Option<i64>, Warning> {
        let Some(text) = self.get_string(name)? else {
            return Ok(None);
        };
        let line = self.get(name).map_or(0, Setting::line);
        let warn = |message: String| Warning {
            line,
            col: None,
            message,
        };
        if self.get(name).is_some_and(|s| s.op == Op::Add) {
            return Err(warn(format!(
                "can't use += with numbers for parameter `{name}'"
            )));
        }
        match strtol0_full(text) {
            Ok(v) => Ok(Some(v)),
            Err(StrtolError::Range) => Err(warn(format!(
                "parameter `{name}' could not be parsed as a number: Numerical result out of range"
            ))),
            Err(StrtolError::Invalid) => {
                Err(warn(format!("parameter `{name}' is not a valid number")))
            }
        }
    }

    /// `xlu_cfg_get_defbool`: a number, non-zero is true.
    pub fn get_defbool(&self, name: &str) -> Result<Option<bool>, Warning> {
        Ok(self.get_long(name)?.map(|l| l != 0))
    }
}
