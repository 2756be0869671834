//! `ctnl`: the Linux conntrack table over ctnetlink, blocking and typed.
#![warn(missing_docs)]
pub mod sysctl;
