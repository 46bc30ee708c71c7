//! iSCSI target: the SCSI block device layer and its backing stores.
//!
//! The connection and session layers (RFC 7143) sit on top of [`scsi::LunSet::execute`]; this
//! tree does no network I/O so it can be tested and fuzzed without sockets.

pub mod backstore;
pub mod connection;
pub mod scsi;
pub mod server;
