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
#[path = "conformance/cases_txn.rs"]
mod cases_txn;
#[path = "conformance/cases_watch.rs"]
mod cases_watch;
#[path = "conformance/differential.rs"]
mod differential;
#[path = "conformance/random.rs"]
mod random;
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

/// Every event caused so far. A round trip on the watching connection
/// first: both stores queue the events of a change before answering any
/// later request, so they are all in before its reply, without timing
/// guesses.
pub fn events<W: Xenstore + XenstoreWatch + ?Sized>(w: &W) -> Vec<WatchEvent> {
    let _ = w.read(T0, "/");
    std::iter::from_fn(|| w.wait_event(Duration::from_millis(10)).unwrap()).collect()
}

/// The next `n` events, waiting up to 5 s for each (for changes the daemon
/// makes on its own, like a domain release after `VIRQ_DOM_EXC`).
pub fn wait_events<W: XenstoreWatch + ?Sized>(w: &W, n: usize) -> Vec<WatchEvent> {
    (0..n)
        .filter_map(|_| w.wait_event(Duration::from_secs(5)).unwrap())
        .collect()
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
    cases_txn::transaction_commit_abort_visibility,
    cases_txn::transaction_conflicts_between_connections,
    cases_watch::watch_initial_subtree_and_removal_events,
    cases_watch::event_and_reply_ordering_on_the_wire,
    cases_watch::transaction_events_fire_at_commit,
    cases_watch::special_watches_introduce_release,
    cases_watch::removal_events_per_removed_node,
    cases_watch::release_removes_the_domains_nodes,
    cases_txn::concurrent_transactional_increments,
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

/// The real harness's own domain mechanism (no memory counterpart: the
/// memory store has no hypervisor): a domain vanishing from `DIR/domains`
/// plus the fake `VIRQ_DOM_EXC` releases it like `XS_RELEASE`.
mod harness {
    use super::*;
    use vusb_testsupport::xenstored::XenstoredOptions;

    #[test]
    fn vanished_domain_is_released_on_dom_exc() {
        let opts = XenstoredOptions {
            domains: Some("0\n5\n".into()),
            ..XenstoredOptions::default()
        };
        let Some(b) = super::backend::Real::start_with("vanished_domain_is_released", &opts) else {
            return;
        };
        use super::backend::Backend;
        let a = b.dom0();
        a.introduce(5, 1, 7).unwrap();
        a.write(T0, "/local/domain/5/k", b"1").unwrap();
        a.set_perms(T0, "/local/domain/5", &perms(&["n5"])).unwrap();
        a.watch("@releaseDomain", "rel").unwrap();
        assert_eq!(events(&a), [ev("@releaseDomain", "rel")]);
        b.xs.set_domains("0\n").unwrap();
        b.xs.fire_dom_exc().unwrap();
        assert_eq!(wait_events(&a, 1), [ev("@releaseDomain", "rel")]);
        assert!(!a.is_domain_introduced(5).unwrap());
        assert_eq!(errno(a.read(T0, "/local/domain/5")), Errno::ENOENT);
    }
}
