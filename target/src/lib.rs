//! pxeroot-target library: the iSCSI target's SCSI block device layer and backing stores.
//! The `pxeroot-target` binary (DHCP, TFTP, iSCSI listeners) is built on top of it.

pub mod iscsi;

pub mod config;
pub mod dhcp;
pub mod pxe;
pub mod ra;
pub mod tftp;
pub mod throttle;
