//! Crate skeleton; filled by its owner.
