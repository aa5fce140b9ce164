//! Xenstore permissions, in the wire's text form `n0`, `r5`, `w7`, `b3`.

use std::fmt;
use std::str::FromStr;

use crate::{DomId, Errno, Error};

/// What a permission entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermKind {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

/// One permission entry. In a node's list the first entry names the owner
/// (who may do anything) and, through its kind, what everyone else gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    /// The domain the entry is about.
    pub domid: DomId,
    /// What it grants.
    pub kind: PermKind,
}

impl Perm {
    /// Shorthand constructor.
    pub const fn new(kind: PermKind, domid: DomId) -> Perm {
        Perm { domid, kind }
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.kind {
            PermKind::None => 'n',
            PermKind::Read => 'r',
            PermKind::Write => 'w',
            PermKind::Both => 'b',
        };
        write!(f, "{c}{}", self.domid)
    }
}

impl FromStr for Perm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Perm, Error> {
        let bad = || Error::BadPermission {
            text: s.to_owned(),
            errno: Errno::EINVAL,
        };
        let mut chars = s.chars();
        let kind = match chars.next() {
            Some('n') => PermKind::None,
            Some('r') => PermKind::Read,
            Some('w') => PermKind::Write,
            Some('b') => PermKind::Both,
            _ => return Err(bad()),
        };
        let domid = chars.as_str().parse::<DomId>().map_err(|_| bad())?;
        Ok(Perm { domid, kind })
    }
}
