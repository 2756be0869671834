//! VM tests (see lvs-check/README.md).
#![cfg(feature = "vm-tests")]
