//! `ctsync-proto`: a conntrackd-compatible state-sync wire protocol with sans-IO reliability sessions.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
