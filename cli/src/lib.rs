//! The command-line tools. Each `src/bin/<tool>.rs` is a few lines calling `cli::<tool>::run()`.
#![forbid(unsafe_code)]
pub mod conntrack;
pub mod ctsyncd;
pub mod ipvsadm;
pub mod keepalived;
pub mod vrrpd;
