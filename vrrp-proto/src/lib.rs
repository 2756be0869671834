//! `vrrp-proto`: VRRPv2/v3 codecs and a sans-IO router state machine.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
