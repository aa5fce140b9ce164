//! One conformance suite, run twice: against the real C xenstored (a
//! private daemon per test through `vusb-testsupport`, guests through its
//! ring page) and against vusb's memory store served on a Unix socket.
//! Each case is written once (`conformance/cases_*.rs`) against a
//! [`backend::Backend`] and instantiated in the modules `real` and `mem`.
//! Both must pass: a divergence is a bug in the memory store.
//!
//! Without the real daemon, the `real` tests print `SKIP` and pass,
//! except under `CI=true` where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "conformance/backend.rs"]
mod backend;
#[path = "conformance/cases_basic.rs"]
mod cases_basic;
#[path = "conformance/cases_guest.rs"]
mod cases_guest;
#[path = "conformance/cases_txn_watch.rs"]
mod cases_txn_watch;
#[path = "conformance/differential.rs"]
mod differential;
#[path = "conformance/raw.rs"]
mod raw;

use std::time::Duration;

pub use vusb_xenstore::{Errno, Perm, TxId, WatchEvent, Xenstore, XenstoreWatch};

pub const T0: TxId = TxId::NONE;

pub fn errno<T: std::fmt::Debug>(r: vusb_xenstore::Result<T>) -> Errno {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.errno().unwrap_or_else(|| panic!("no errno in {e}")),
    }
}

pub fn perms(s: &[&str]) -> Vec<Perm> {
    s.iter().map(|p| p.parse().unwrap()).collect()
}

pub fn ev(p: &str, t: &str) -> WatchEvent {
    WatchEvent {
        path: p.to_owned(),
        token: t.to_owned(),
    }
}

/// Every event that arrives within 300 ms of the previous one.
pub fn events<W: XenstoreWatch + ?Sized>(w: &W) -> Vec<WatchEvent> {
    std::iter::from_fn(|| w.wait_event(Duration::from_millis(300)).unwrap()).collect()
}

macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod real {
            $(
                #[test]
                fn $case() {
                    if let Some(b) = super::backend::Real::start(stringify!($case)) {
                        super::$module::$case(&b);
                    }
                }
            )*
        }
        mod mem {
            $(
                #[test]
                fn $case() {
                    super::$module::$case(&super::backend::Mem::start());
                }
            )*
        }
    };
}

suite! {
    cases_basic::read_write_mkdir_rm,
    cases_basic::directory_order_is_creation_order,
    cases_basic::relative_paths_resolve_to_the_home,
    cases_basic::permissions_of_dom0_nodes,
    cases_basic::malformed_requests_on_the_wire,
    cases_basic::oversized_payload_drops_the_connection,
    cases_basic::path_length_limits,
    cases_basic::large_directory_e2big_and_parts,
    cases_txn_watch::transaction_commit_abort_visibility,
    cases_txn_watch::transaction_conflicts_between_connections,
    cases_txn_watch::watch_initial_subtree_and_removal_events,
    cases_txn_watch::event_and_reply_ordering_on_the_wire,
    cases_txn_watch::transaction_events_fire_at_commit,
    cases_txn_watch::special_watches_introduce_release,
    cases_txn_watch::removal_events_per_removed_node,
    cases_txn_watch::release_removes_the_domains_nodes,
    cases_guest::guest_gets_eacces_on_dom0_nodes,
    cases_guest::guest_created_nodes_inherit_with_owner_rewritten,
    cases_guest::guest_errors_for_missing_nodes_come_from_ancestors,
    cases_guest::guest_watch_events_need_read_permission,
    cases_guest::guest_domain_requests,
    cases_guest::guest_quotas,
}

mod quota {
    use vusb_testsupport::xenstored::XenstoredOptions;
    use vusb_xenstore::mem::Quotas;

    #[test]
    fn real_node_count_quota() {
        let opts = XenstoredOptions {
            extra_args: vec!["--entry-nb=10".into()],
            ..XenstoredOptions::default()
        };
        if let Some(b) = super::backend::Real::start_with("node_count_quota", &opts) {
            super::cases_guest::node_count_quota(&b);
        }
    }

    #[test]
    fn mem_node_count_quota() {
        let quotas = Quotas {
            nodes: 10,
            ..Quotas::default()
        };
        super::cases_guest::node_count_quota(&super::backend::Mem::start_with(quotas));
    }
}
