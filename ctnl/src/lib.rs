//! `ctnl`: the Linux conntrack table over ctnetlink, blocking and typed.
#![warn(missing_docs)]
