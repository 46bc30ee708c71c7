//! Handing a logged-in connection to iscsi_tcp and waiting for the LUN's block device.

use std::net::{IpAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pxeroot_proto::chap::Secret;
use pxeroot_proto::digest::DigestKind;
use pxeroot_proto::login::LoginOutcome;
use pxeroot_proto::{Isid, Lun};

use super::netlink::IscsiNetlink;
use super::uevent::{Op, Param, Request, STOP_CONN_TERM};
use super::KernelError;

/// Commands the kernel may queue for the session (open-iscsi's defaults).
const CMDS_MAX: u16 = 128;
/// Queue depth per LUN (open-iscsi's default).
const QUEUE_DEPTH: u16 = 32;

/// Everything the attach needs besides the socket.
#[derive(Debug)]
pub struct AttachSpec<'a> {
    /// The transport handle from [`super::prepare`].
    pub handle: u64,
    /// TargetName.
    pub target_name: &'a str,
    /// The portal the login ran on.
    pub portal: (IpAddr, u16),
    /// InitiatorName.
    pub initiator_name: &'a str,
    /// The ISID the login used.
    pub isid: Isid,
    /// open-iscsi's iface name to record (`default` unless configured).
    pub iface_name: &'a str,
    /// CHAP credentials, recorded so that iscsid can log in again after a connection loss
    /// (the kernel shows them to root only).
    pub chap: Option<(&'a str, &'a Secret)>,
    /// Mutual CHAP credentials, recorded likewise.
    pub chap_in: Option<(&'a str, &'a Secret)>,
    /// The login's result.
    pub outcome: &'a LoginOutcome,
    /// The boot LUN.
    pub lun: Lun,
    /// How long to wait for the LUN's block device after the scan.
    pub device_timeout: Duration,
}

/// A session running in the kernel with the boot LUN's block device present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The kernel's session id.
    pub sid: u32,
    /// The SCSI host number.
    pub host_no: u32,
    /// The block device node, e.g. `/dev/sda`.
    pub device: PathBuf,
    /// The SCSI address `host:channel:id:lun`.
    pub scsi_address: String,
}

/// Linux's integer form of a SCSI LUN (`scsilun_to_int`): each 2-byte level swapped in.
pub fn linux_lun(lun: &Lun) -> u64 {
    let b = lun.0;
    let mut v = 0u64;
    for i in (0..8).step_by(2) {
        v |= (u64::from(b[i]) << ((i + 1) * 8)) | (u64::from(b[i + 1]) << (i * 8));
    }
    v
}

/// Tears a half-built session down unless disarmed.
struct Teardown<'a> {
    nl: &'a mut IscsiNetlink,
    handle: u64,
    sid: u32,
    conn: Option<u32>,
    armed: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cid) = self.conn {
            let _ = self.nl.call(&Request::stop_conn(
                self.handle,
                self.sid,
                cid,
                STOP_CONN_TERM,
            ));
            let _ = self
                .nl
                .call(&Request::conn(Op::DestroyConn, self.handle, self.sid, cid));
        }
        let _ = self
            .nl
            .call(&Request::unbind_session(self.handle, self.sid));
        let _ = self
            .nl
            .call(&Request::destroy_session(self.handle, self.sid));
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn isid_hex(isid: &Isid) -> String {
    isid.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// The descriptive and negotiated parameters, in open-iscsi's order (descriptive ones before
/// the negotiated ones; EXP_STATSN and TPGT last).
fn params(spec: &AttachSpec<'_>) -> Vec<(Param, Vec<u8>)> {
    let o = spec.outcome;
    let mut p: Vec<(Param, Vec<u8>)> = vec![
        (Param::TargetName, spec.target_name.into()),
        (Param::PersistentAddress, spec.portal.0.to_string().into()),
        (Param::PersistentPort, spec.portal.1.to_string().into()),
    ];
    if let Some((user, secret)) = spec.chap {
        p.push((Param::Username, user.into()));
        p.push((Param::Password, secret.expose().to_vec()));
    }
    if let Some((user, secret)) = spec.chap_in {
        p.push((Param::UsernameIn, user.into()));
        p.push((Param::PasswordIn, secret.expose().to_vec()));
    }
    let rest: Vec<(Param, String)> = vec![
        (Param::FastAbort, "1".to_owned()),
        (Param::AbortTmo, "15".to_owned()),
        (Param::LuResetTmo, "30".to_owned()),
        (Param::TgtResetTmo, "30".to_owned()),
        // No NOP-Outs from the kernel while nobody in userspace answers a ping timeout
        // (open-iscsi PR #309); iscsid sets its own values when it adopts the session.
        (Param::PingTmo, "0".to_owned()),
        (Param::RecvTmo, "0".to_owned()),
        (Param::IfaceName, spec.iface_name.to_owned()),
        (Param::InitiatorName, spec.initiator_name.to_owned()),
        (Param::Isid, isid_hex(&spec.isid)),
        (Param::BootRoot, "1".to_owned()),
        (
            Param::MaxRecvDlength,
            o.conn.max_recv_data_segment_length.to_string(),
        ),
        (
            Param::MaxXmitDlength,
            o.conn.max_send_data_segment_length.to_string(),
        ),
        (
            Param::HdrDgstEn,
            yes_no(o.conn.header_digest == DigestKind::Crc32c).to_owned(),
        ),
        (
            Param::DataDgstEn,
            yes_no(o.conn.data_digest == DigestKind::Crc32c).to_owned(),
        ),
        (
            Param::InitialR2tEn,
            yes_no(o.session.initial_r2t).to_owned(),
        ),
        (Param::MaxR2t, o.session.max_outstanding_r2t.to_string()),
        (
            Param::ImmDataEn,
            yes_no(o.session.immediate_data).to_owned(),
        ),
        (Param::FirstBurst, o.session.first_burst_length.to_string()),
        (Param::MaxBurst, o.session.max_burst_length.to_string()),
        (
            Param::PduInorderEn,
            yes_no(o.session.data_pdu_in_order).to_owned(),
        ),
        (
            Param::DataseqInorderEn,
            yes_no(o.session.data_sequence_in_order).to_owned(),
        ),
        (Param::Erl, o.session.error_recovery_level.to_string()),
        (Param::ExpStatsn, o.exp_stat_sn.0.to_string()),
    ];
    p.extend(rest.into_iter().map(|(k, v)| (k, v.into_bytes())));
    if let Some(tpgt) = o.session.target_portal_group_tag {
        p.push((Param::Tpgt, tpgt.to_string().into_bytes()));
    }
    p
}

/// Parameters the kernel may not know; their refusal is tolerated as open-iscsi does.
fn optional(param: Param) -> bool {
    matches!(
        param,
        Param::FastAbort
            | Param::AbortTmo
            | Param::LuResetTmo
            | Param::TgtResetTmo
            | Param::PingTmo
            | Param::RecvTmo
            | Param::IfaceName
            | Param::BootRoot
            | Param::Isid
    )
}

/// Hands `stream` (logged in, nothing unread) to the kernel and waits for the LUN's block
/// device. On failure the kernel session is removed again.
///
/// # Errors
/// [`KernelError`] naming the step.
/// `after_scan` runs once the scan has added the SCSI devices and before the wait for the
/// block device (the boot waits there for sd_mod, which binds to devices added before it).
pub fn attach(
    stream: TcpStream,
    spec: &AttachSpec<'_>,
    after_scan: &mut dyn FnMut() -> Result<(), KernelError>,
    log: &mut dyn FnMut(&str),
) -> Result<Attached, KernelError> {
    let mut nl = IscsiNetlink::open()?;
    let h = spec.handle;
    let created = nl.call(&Request::create_session(
        h,
        spec.outcome.cmd_sn.0,
        CMDS_MAX,
        QUEUE_DEPTH,
    ))?;
    let (sid, host_no) = (created.sid(), created.second());
    let mut guard = Teardown {
        nl: &mut nl,
        handle: h,
        sid,
        conn: None,
        armed: true,
    };
    let conn = guard.nl.call(&Request::conn(Op::CreateConn, h, sid, 0))?;
    let cid = conn.second();
    guard.conn = Some(cid);
    let fd = u64::try_from(stream.as_raw_fd()).unwrap_or(u64::MAX);
    guard.nl.call(&Request::bind_conn(h, sid, cid, fd, true))?;
    // The kernel holds its own reference to the socket now.
    drop(stream);
    for (param, value) in params(spec) {
        if value.is_empty() {
            continue;
        }
        match guard
            .nl
            .call(&Request::set_param(h, sid, cid, param, &value))
        {
            Ok(_) => {}
            Err(KernelError::Request { .. }) if optional(param) => {}
            Err(e) => return Err(e),
        }
    }
    guard.nl.call(&Request::conn(Op::StartConn, h, sid, cid))?;
    log(&format!("session {sid} running on SCSI host {host_no}"));
    let lun = linux_lun(&spec.lun);
    // Subscribed before the scan, so that the disk's uevent cannot be missed.
    let events = crate::events::Events::open(crate::events::Kind::Uevent);
    scan(host_no)?;
    after_scan()?;
    let (device, scsi_address) = wait_for_block(host_no, lun, spec, &events)?;
    guard.armed = false;
    Ok(Attached {
        sid,
        host_no,
        device,
        scsi_address,
    })
}

fn scan(host_no: u32) -> Result<(), KernelError> {
    let path = PathBuf::from(format!("/sys/class/scsi_host/host{host_no}/scan"));
    std::fs::write(&path, "- - -").map_err(|e| KernelError::sysfs(&path, e))
}

/// SCSI devices of a host, as `h:c:t:l` names.
fn scsi_devices(host_no: u32) -> Vec<String> {
    let prefix = format!("{host_no}:");
    let mut v: Vec<String> = std::fs::read_dir("/sys/bus/scsi/devices")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix) && n.matches(':').count() == 3)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn lun_of(addr: &str) -> Option<u64> {
    addr.rsplit(':').next()?.parse().ok()
}

fn block_name(addr: &str) -> Option<String> {
    let dir = Path::new("/sys/bus/scsi/devices").join(addr).join("block");
    let entry = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).next()?;
    Some(entry.file_name().to_string_lossy().into_owned())
}

fn wait_for_block(
    host_no: u32,
    lun: u64,
    spec: &AttachSpec<'_>,
    events: &crate::events::Events,
) -> Result<(PathBuf, String), KernelError> {
    let timeout = spec.device_timeout;
    let start = Instant::now();
    // The scan is synchronous: the LUN's SCSI device exists now or not at all. Allow a short
    // grace for a target that answers REPORT LUNS late.
    let grace = Duration::from_secs(2).min(timeout);
    loop {
        let devices = scsi_devices(host_no);
        let found = devices.iter().find(|a| lun_of(a) == Some(lun));
        match found {
            Some(addr) => {
                if let Some(name) = block_name(addr) {
                    let dev = Path::new("/dev").join(&name);
                    if dev.exists() {
                        return Ok((dev, addr.clone()));
                    }
                    if start.elapsed() >= timeout {
                        return Err(KernelError::NoBlockDevice(format!(
                            "LUN {lun} is {name} in sysfs, but {} does not exist after {} s \
                             (is devtmpfs mounted on /dev?)",
                            dev.display(),
                            timeout.as_secs()
                        )));
                    }
                } else if start.elapsed() >= timeout {
                    return Err(KernelError::NoBlockDevice(format!(
                        "LUN {lun} ({addr}) has no block device after {} s: is it a disk, \
                         and is sd_mod loaded?",
                        timeout.as_secs()
                    )));
                }
            }
            None if start.elapsed() >= grace => {
                let luns: Vec<String> = devices
                    .iter()
                    .filter_map(|a| lun_of(a).map(|l| l.to_string()))
                    .collect();
                let found = if luns.is_empty() {
                    "the target reports no LUNs to this initiator".to_owned()
                } else {
                    format!("the target has LUN {}", luns.join(", "))
                };
                return Err(KernelError::LunMissing {
                    lun,
                    target: spec.target_name.to_owned(),
                    found,
                });
            }
            None => {}
        }
        // A uevent (the disk, its driver binding) wakes the wait; 50 ms is the fallback.
        events.wait(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_lun_matches_scsilun_to_int() {
        assert_eq!(linux_lun(&Lun::ZERO), 0);
        assert_eq!(linux_lun(&Lun::from_number(5).unwrap()), 5);
        // Flat space addressing, LUN 300: 0x41 0x2c -> 0x412c.
        assert_eq!(linux_lun(&Lun::from_number(300).unwrap()), 0x412c);
        // Second level: bytes 2..4 land in bits 16..32 swapped.
        assert_eq!(linux_lun(&Lun([0, 1, 0, 2, 0, 0, 0, 0])), 0x0002_0001);
    }

    #[test]
    fn sysfs_names() {
        assert_eq!(lun_of("2:0:0:17"), Some(17));
        assert_eq!(lun_of("host2"), None);
        assert_eq!(isid_hex(&Isid([0, 2, 0x3d, 0, 0, 1])), "00023d000001");
    }
}
