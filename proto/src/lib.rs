//! pxeroot-proto: the iSCSI wire protocol (RFC 7143) shared by `pxeroot-initiator` and
//! `pxeroot-target`.
//!
//! The crate is pure: no I/O, no async runtime, no `unsafe`. Both programs drive the same
//! codecs and state machines, so that the initiator and the target can be tested against each
//! other in memory and fuzzed without sockets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
