//! The queue of watch events that arrived between replies, bounded.
//!
//! Events are read off the connection whenever a reply is awaited; a
//! guest writing under a watched path, or any flood, could make that
//! queue grow without end while the owner issues requests. A watch event
//! only says "look again at this path", so:
//! - an event equal to one already queued (same path and token) is
//!   coalesced into it;
//! - at most [`MAX_QUEUED_EVENTS`] distinct events are kept; past that the
//!   queue is marked overflowed and further events are counted, not kept.
//!
//! The next [`crate::XenstoreWatch::wait_event`] then reports
//! [`crate::Error::WatchEventsOverflowed`] once and empties the queue: the
//! caller must re-read the state it watches (events were lost), then wait
//! again as usual. Nothing is dropped silently.

use std::collections::{HashSet, VecDeque};

use crate::WatchEvent;

/// How many distinct watch events a connection keeps queued.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// A bounded, coalescing FIFO of watch events.
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: VecDeque<WatchEvent>,
    queued: HashSet<(String, String)>,
    cap: usize,
    /// Events not kept since the queue filled up (0: no overflow).
    dropped: u64,
}

/// What [`EventQueue::pop`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// The oldest queued event.
    Event(WatchEvent),
    /// Events were lost: `dropped` were not kept, `discarded` queued ones
    /// are thrown away with them (the caller re-reads everything).
    Overflowed { dropped: u64, discarded: usize },
    /// Nothing queued.
    Empty,
}

impl EventQueue {
    pub(crate) fn new() -> EventQueue {
        EventQueue::with_capacity(MAX_QUEUED_EVENTS)
    }

    pub(crate) fn with_capacity(cap: usize) -> EventQueue {
        EventQueue {
            queue: VecDeque::new(),
            queued: HashSet::new(),
            cap,
            dropped: 0,
        }
    }

    /// Queue `ev` (coalesced with an equal queued one; counted, not kept,
    /// when full).
    pub(crate) fn push(&mut self, ev: WatchEvent) {
        let key = (ev.path.clone(), ev.token.clone());
        if self.queued.contains(&key) {
            return;
        }
        if self.dropped > 0 || self.queue.len() >= self.cap {
            if self.dropped == 0 {
                log::warn!(
                    "xenstore: more than {} distinct watch events queued; dropping them until the owner re-reads",
                    self.cap
                );
            }
            self.dropped += 1;
            return;
        }
        self.queued.insert(key);
        self.queue.push_back(ev);
    }

    /// The next event, or the overflow (reported once, the queue emptied).
    pub(crate) fn pop(&mut self) -> Popped {
        if self.dropped > 0 {
            let out = Popped::Overflowed {
                dropped: self.dropped,
                discarded: self.queue.len(),
            };
            self.clear();
            return out;
        }
        match self.queue.pop_front() {
            Some(ev) => {
                self.queued.remove(&(ev.path.clone(), ev.token.clone()));
                Popped::Event(ev)
            }
            None => Popped::Empty,
        }
    }

    /// Forget everything (and the overflow).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.queued.clear();
        self.dropped = 0;
    }

    /// How many events are queued.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, token: &str) -> WatchEvent {
        WatchEvent {
            path: path.into(),
            token: token.into(),
        }
    }

    #[test]
    fn duplicates_coalesce_and_order_is_kept() {
        let mut q = EventQueue::with_capacity(4);
        for _ in 0..100 {
            q.push(ev("/a", "t"));
            q.push(ev("/b", "t"));
        }
        q.push(ev("/a", "u"));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Popped::Event(ev("/a", "t")));
        // Popped: the same event may queue again.
        q.push(ev("/a", "t"));
        assert_eq!(q.pop(), Popped::Event(ev("/b", "t")));
        assert_eq!(q.pop(), Popped::Event(ev("/a", "u")));
        assert_eq!(q.pop(), Popped::Event(ev("/a", "t")));
        assert_eq!(q.pop(), Popped::Empty);
    }

    #[test]
    fn overflow_is_reported_once_then_the_queue_works_again() {
        let mut q = EventQueue::with_capacity(3);
        for i in 0..10 {
            q.push(ev(&format!("/p{i}"), "t"));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.pop(),
            Popped::Overflowed {
                dropped: 7,
                discarded: 3
            }
        );
        assert_eq!(q.pop(), Popped::Empty);
        q.push(ev("/after", "t"));
        assert_eq!(q.pop(), Popped::Event(ev("/after", "t")));
    }
}
