//! TODO(owner: xenstore helper): see lib.rs module map.
