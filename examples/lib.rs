//! Runnable examples of the workspace's libraries. Run one with `cargo run -p examples --example NAME`.
#![forbid(unsafe_code)]
