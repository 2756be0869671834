//! Test hook: make the codec treat chosen attributes it knows as unknown (cargo feature
//! `test-unknown-attrs`; not part of the API, never enable it in a build that ships).
//!
//! It exists to prove, against a real kernel, that an attribute this crate does not know survives a
//! get/modify/set: the Debian 6.1 kernel of the test VM sends nothing the crate does not know, so a test
//! blinds the codec to an attribute the kernel sends *and honours* (a destination's tunnel type, a
//! service's persistence engine), reads, changes another field, writes back, and checks with ipvsadm that
//! the kernel still has the value. While blinded, an attribute is neither decoded into its typed field nor
//! written from it: exactly what a crate that predates it would do. The setting is per thread.
//!
//! Without the feature, `is_blind` is a constant `false` and the module is private.

/// A nest of the IPVS attribute tree, to name which nest an attribute number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Nest {
    /// `IPVS_SVC_ATTR_*`.
    Service,
    /// `IPVS_DEST_ATTR_*`.
    Destination,
    /// `IPVS_STATS_ATTR_*`.
    Stats,
    /// `IPVS_DAEMON_ATTR_*`.
    Daemon,
    /// The top-level timeout attributes (`IPVS_CMD_ATTR_TIMEOUT_*`).
    Config,
    /// `IPVS_INFO_ATTR_*`.
    Info,
}

#[cfg(feature = "test-unknown-attrs")]
mod hook {
    use super::Nest;
    use std::cell::RefCell;

    thread_local! {
        static BLIND: RefCell<Vec<(Nest, u16)>> = const { RefCell::new(Vec::new()) };
    }

    /// Until the guard is dropped, the codec on this thread treats each `(nest, attribute number)` in
    /// `list` as unknown (see the module docs).
    pub fn treat_as_unknown(list: &[(Nest, u16)]) -> Blind {
        BLIND.with(|b| *b.borrow_mut() = list.to_vec());
        Blind {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Restores the codec when dropped.
    #[derive(Debug)]
    #[must_use = "the codec is restored when the guard is dropped"]
    pub struct Blind {
        _not_send: std::marker::PhantomData<*const ()>,
    }

    impl Drop for Blind {
        fn drop(&mut self) {
            BLIND.with(|b| b.borrow_mut().clear());
        }
    }

    /// True when the codec must treat `kind` of `nest` as unknown.
    pub(crate) fn is_blind(nest: Nest, kind: u16) -> bool {
        BLIND.with(|b| b.borrow().contains(&(nest, kind)))
    }
}

#[cfg(feature = "test-unknown-attrs")]
pub(crate) use hook::is_blind;
#[cfg(feature = "test-unknown-attrs")]
pub use hook::{Blind, treat_as_unknown};

/// Always false without the `test-unknown-attrs` feature.
#[cfg(not(feature = "test-unknown-attrs"))]
#[inline(always)]
pub(crate) fn is_blind(_nest: Nest, _kind: u16) -> bool {
    false
}
