//! `ipvs-nl`: the Linux IPVS load balancer over generic netlink, blocking and typed.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
