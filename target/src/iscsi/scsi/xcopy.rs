//! EXTENDED COPY (LID1) (SPC-4 6.4) and RECEIVE COPY RESULTS (SPC-4 6.18): the copy manager.
//!
//! Every LUN is a copy manager that can copy between any LUNs of its [`LunSet`] (or, through
//! [`Lun::execute`], within itself). Supported descriptors are the identification descriptor
//! target descriptor (0xE4) naming a LUN by the NAA designator of its VPD page 0x83, and the
//! block device to block device segment descriptor (0x02). Inline and held data, stream
//! devices, the NUL bit and LID4 (token) copies are not supported.
//!
//! The command is synchronous: the whole parameter list is validated and every target and
//! segment checked against the capacity of its LUN before the first block moves, so a rejected
//! command changes nothing. A read or write error while copying aborts the command after the
//! segments already done (COPY ABORTED). Results are held per I_T nexus and list identifier
//! (LIST ID USAGE 00b) in the LUN that received the EXTENDED COPY and dropped when the nexus
//! goes away.

use std::sync::Arc;

use super::cdb::{self, Cdb};
use super::lun::{Lun, LunSet};
use super::reservation::ItNexus;
use super::rw::write_err;
use super::sense::{
    Sense, COPY_SEGMENT_FAILED, COPY_TARGET_NOT_REACHABLE, INCORRECT_COPY_TARGET_TYPE,
    INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_IU, INVALID_FIELD_IN_PARAM, OPERATION_IN_PROGRESS,
    PARAM_LIST_LENGTH, TOO_MANY_SEGMENT_DESCRIPTORS, TOO_MANY_TARGET_DESCRIPTORS,
    UNSUPPORTED_SEGMENT_DESCRIPTOR, UNSUPPORTED_TARGET_DESCRIPTOR, WRITE_PROTECTED,
};
use super::{truncate, CmdResult, Failure};
use crate::iscsi::backstore::BLOCK_SIZE;

/// RECEIVE COPY RESULTS service actions (LID1).
pub(crate) const SA_COPY_STATUS: u8 = 0x00;
pub(crate) const SA_RECEIVE_DATA: u8 = 0x01;
pub(crate) const SA_OPERATING_PARAMETERS: u8 = 0x03;
pub(crate) const SA_FAILED_SEGMENT_DETAILS: u8 = 0x04;

/// Most target descriptors in one EXTENDED COPY (OPERATING PARAMETERS).
pub(crate) const MAX_TARGET_DESCRIPTORS: u16 = 8;
/// Most segment descriptors in one EXTENDED COPY.
pub(crate) const MAX_SEGMENT_DESCRIPTORS: u16 = 8;
/// Most bytes of target plus segment descriptors.
pub(crate) const MAX_DESCRIPTOR_LIST_LENGTH: u32 = 1024;
/// Largest segment in bytes: the 16-bit BLOCK DEVICE NUMBER OF BLOCKS field, in 512-byte blocks.
const MAX_SEGMENT_BYTES: u32 = 0xFFFF * BLOCK_SIZE as u32;
/// Length of the parameter list header.
const HEADER_LEN: usize = 16;
/// Identification descriptor target descriptor.
const TARGET_IDENT: u8 = 0xE4;
/// Block device to block device segment descriptor.
const SEGMENT_BLOCK_TO_BLOCK: u8 = 0x02;
/// Its DESCRIPTOR LENGTH field (bytes after the first four).
const SEGMENT_B2B_LEN: usize = 0x18;
/// Blocks moved per read / write while copying (1 MiB).
const COPY_CHUNK_BLOCKS: u64 = 2048;

/// COPY MANAGER STATUS values of COPY STATUS.
const STATUS_IN_PROGRESS: u8 = 0x00;
const STATUS_DONE: u8 = 0x01;
const STATUS_FAILED: u8 = 0x02;

/// What RECEIVE COPY RESULTS reports about one EXTENDED COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyResult {
    /// COPY MANAGER STATUS.
    status: u8,
    /// Segments completed.
    segments: u16,
    /// Bytes written to destinations.
    bytes: u64,
    /// Sense data the command ended with, if it failed while copying.
    sense: Option<Sense>,
}

/// The logical units an EXTENDED COPY can name: every LUN of the set it was sent through, or
/// only the LUN itself when there is no set.
#[derive(Clone, Copy)]
pub(crate) enum CopyScope<'a> {
    /// Commands arriving through [`LunSet::execute`].
    Set(&'a LunSet),
    /// Commands arriving through [`Lun::execute`].
    Alone(&'a Lun),
}

impl<'a> CopyScope<'a> {
    /// The LUN whose NAA designator (VPD 0x83, logical unit association) is `naa`.
    fn find(&self, naa: &[u8]) -> Option<&'a Lun> {
        match *self {
            CopyScope::Set(set) => set.luns().map(Arc::as_ref).find(|l| l.naa() == naa),
            CopyScope::Alone(l) => (l.naa() == naa).then_some(l),
        }
    }
}

/// One block-to-block segment, validated against its copy targets.
struct Segment<'a> {
    src: &'a Lun,
    dst: &'a Lun,
    blocks: u64,
    src_lba: u64,
    dst_lba: u64,
}

fn be16(p: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([byte(p, i), byte(p, i + 1)])
}

fn be32(p: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([byte(p, i), byte(p, i + 1), byte(p, i + 2), byte(p, i + 3)])
}

fn be64(p: &[u8], i: usize) -> u64 {
    (u64::from(be32(p, i)) << 32) | u64::from(be32(p, i + 4))
}

fn byte(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// Field pointer into the parameter list, saturated to the 16-bit field.
fn at(offset: usize) -> u16 {
    u16::try_from(offset).unwrap_or(u16::MAX)
}

/// Splits a list into descriptors: `(offset in the parameter list, bytes)`. `len_of` gives a
/// descriptor's length from its bytes; one that runs past the list is a length error.
fn split(
    list: &[u8],
    base: usize,
    len_of: impl Fn(&[u8]) -> usize,
) -> Result<Vec<(usize, &[u8])>, Sense> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < list.len() {
        let rest = list.get(off..).unwrap_or_default();
        let n = len_of(rest);
        let d = rest.get(..n).ok_or(PARAM_LIST_LENGTH)?;
        out.push((base + off, d));
        off += n;
    }
    Ok(out)
}

impl Lun {
    /// EXTENDED COPY (LID1).
    pub(crate) fn extended_copy(
        &self,
        nexus: &ItNexus,
        c: &Cdb,
        data: &[u8],
        scope: CopyScope<'_>,
    ) -> CmdResult {
        if c.service_action() != 0 {
            // LID4 (token based) copies are not supported.
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let plen = c.be32(10) as usize;
        if plen == 0 {
            return Ok(Vec::new());
        }
        // Longer lists are not solicited (see `cdb::transfer_for`).
        if plen < HEADER_LEN || plen > cdb::MAX_PARAM_LIST as usize {
            return Err(PARAM_LIST_LENGTH.into());
        }
        let p = data.get(..plen).ok_or(INVALID_FIELD_IN_IU)?;
        let list_id = byte(p, 0);
        let usage = (byte(p, 1) >> 3) & 0x03;
        match usage {
            0b01 => return Err(INVALID_FIELD_IN_PARAM.in_param(1).into()),
            0b11 if list_id != 0 => return Err(INVALID_FIELD_IN_PARAM.in_param(0).into()),
            _ => {}
        }
        let tlen = usize::from(be16(p, 2));
        let slen = be32(p, 8) as usize;
        let inline = be32(p, 12) as usize;
        if tlen.saturating_add(slen) > MAX_DESCRIPTOR_LIST_LENGTH as usize {
            return Err(PARAM_LIST_LENGTH.into());
        }
        if HEADER_LEN + tlen + slen > plen || inline > plen - HEADER_LEN - tlen - slen {
            return Err(PARAM_LIST_LENGTH.into());
        }
        if inline != 0 {
            return Err(INVALID_FIELD_IN_PARAM.in_param(12).into());
        }
        let tlist = p.get(HEADER_LEN..HEADER_LEN + tlen).unwrap_or_default();
        let slist = p
            .get(HEADER_LEN + tlen..HEADER_LEN + tlen + slen)
            .unwrap_or_default();
        // Target descriptors are 32 bytes, except the IPv6 and IP copy service ones (64).
        let targets = split(tlist, HEADER_LEN, |d| match byte(d, 0) {
            0xEA | 0xEB => 64,
            _ => 32,
        })?;
        let segments = split(slist, HEADER_LEN + tlen, |d| 4 + usize::from(be16(d, 2)))?;
        if targets.len() > usize::from(MAX_TARGET_DESCRIPTORS) {
            return Err(TOO_MANY_TARGET_DESCRIPTORS.into());
        }
        if segments.len() > usize::from(MAX_SEGMENT_DESCRIPTORS) {
            return Err(TOO_MANY_SEGMENT_DESCRIPTORS.into());
        }
        if let Some((off, _)) = targets.iter().find(|(_, d)| byte(d, 0) != TARGET_IDENT) {
            return Err(UNSUPPORTED_TARGET_DESCRIPTOR.in_param(at(*off)).into());
        }
        if let Some((off, _)) = segments
            .iter()
            .find(|(_, d)| byte(d, 0) != SEGMENT_BLOCK_TO_BLOCK)
        {
            return Err(UNSUPPORTED_SEGMENT_DESCRIPTOR.in_param(at(*off)).into());
        }
        let luns = targets
            .iter()
            .map(|(off, d)| resolve_target(*off, d, scope))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = segments
            .iter()
            .map(|(off, d)| plan_segment(*off, d, &luns))
            .collect::<Result<Vec<_>, _>>()?;
        for s in &plan {
            s.src.copy_target_ready(nexus, false)?;
            s.dst.copy_target_ready(nexus, true)?;
        }

        let tracked = usage != 0b11;
        if tracked {
            let mut st = self.state();
            let key = (nexus.clone(), list_id);
            if st.copies.get(&key).map(|r| r.status) == Some(STATUS_IN_PROGRESS) {
                return Err(OPERATION_IN_PROGRESS.into());
            }
            st.copies.insert(
                key,
                CopyResult {
                    status: STATUS_IN_PROGRESS,
                    segments: 0,
                    bytes: 0,
                    sense: None,
                },
            );
        }
        let mut result = CopyResult {
            status: STATUS_DONE,
            segments: 0,
            bytes: 0,
            sense: None,
        };
        for s in &plan {
            if let Err(e) = copy_segment(s) {
                result.status = STATUS_FAILED;
                result.sense = Some(e);
                break;
            }
            result.segments += 1;
            result.bytes += s.blocks * BLOCK_SIZE;
        }
        if tracked {
            let mut st = self.state();
            let key = (nexus.clone(), list_id);
            if usage == 0b00 {
                // Only if the nexus still exists (it may have been lost meanwhile).
                if let Some(r) = st.copies.get_mut(&key) {
                    *r = result;
                }
            } else {
                st.copies.remove(&key);
            }
        }
        match result.sense {
            Some(s) => Err(Failure::Check(s)),
            None => Ok(Vec::new()),
        }
    }

    /// Checks this LUN can take part in a copy for `nexus`: medium present, no reservation
    /// conflict for a READ (source) or WRITE (destination), and writable if a destination.
    fn copy_target_ready(&self, nexus: &ItNexus, dst: bool) -> Result<(), Failure> {
        let st = self.state();
        if !st.medium_present {
            return Err(COPY_TARGET_NOT_REACHABLE.into());
        }
        let op = if dst { cdb::WRITE_16 } else { cdb::READ_16 };
        if self.reservation_conflict(&st, nexus, &Cdb::new(&[op])) {
            return Err(Failure::Conflict);
        }
        if dst && self.write_protected() {
            return Err(WRITE_PROTECTED.into());
        }
        Ok(())
    }

    /// RECEIVE COPY RESULTS (LID1 service actions).
    pub(crate) fn receive_copy_results(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        let alloc = c.be32(10) as usize;
        let sa = c.service_action();
        if sa == SA_OPERATING_PARAMETERS {
            return Ok(truncate(operating_parameters(), alloc));
        }
        if !matches!(
            sa,
            SA_COPY_STATUS | SA_RECEIVE_DATA | SA_FAILED_SEGMENT_DETAILS
        ) {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let held = self.state().copies.get(&(nexus.clone(), c.b(2))).copied();
        let r = held.ok_or(INVALID_FIELD_IN_CDB.in_cdb(2))?;
        let d = match sa {
            SA_COPY_STATUS => {
                let mut d = vec![0u8; 12];
                d[0..4].copy_from_slice(&8u32.to_be_bytes());
                d[4] = r.status; // HDD = 0: no held data was discarded
                d[5..7].copy_from_slice(&r.segments.to_be_bytes());
                d[7] = 0; // TRANSFER COUNT UNITS: bytes
                let n = u32::try_from(r.bytes).unwrap_or(u32::MAX);
                d[8..12].copy_from_slice(&n.to_be_bytes());
                d
            }
            // We never hold data: no segment descriptor we support produces any.
            SA_RECEIVE_DATA => vec![0u8; 4],
            _ => match (r.status, r.sense) {
                (STATUS_FAILED, Some(s)) => {
                    let sense = s.to_fixed();
                    let mut d = vec![0u8; 60];
                    d[56] = 0x02; // COPY COMMAND STATUS: CHECK CONDITION
                    d[58..60].copy_from_slice(&(sense.len() as u16).to_be_bytes());
                    d.extend_from_slice(&sense);
                    let avail = (d.len() - 4) as u32;
                    d[0..4].copy_from_slice(&avail.to_be_bytes());
                    d
                }
                // Still running or completed without errors: no failed segment details.
                _ => vec![0u8; 4],
            },
        };
        Ok(truncate(d, alloc))
    }
}

/// OPERATING PARAMETERS (SPC-4 6.18.4).
fn operating_parameters() -> Vec<u8> {
    let implemented = [SEGMENT_BLOCK_TO_BLOCK, TARGET_IDENT];
    let mut d = vec![0u8; 44];
    d[4] = 0x01; // SNLID: LIST ID USAGE 11b is supported
    d[8..10].copy_from_slice(&MAX_TARGET_DESCRIPTORS.to_be_bytes());
    d[10..12].copy_from_slice(&MAX_SEGMENT_DESCRIPTORS.to_be_bytes());
    d[12..16].copy_from_slice(&MAX_DESCRIPTOR_LIST_LENGTH.to_be_bytes());
    d[16..20].copy_from_slice(&MAX_SEGMENT_BYTES.to_be_bytes());
    // MAXIMUM INLINE DATA LENGTH, HELD DATA LIMIT, MAXIMUM STREAM DEVICE TRANSFER SIZE: 0.
    d[34..36].copy_from_slice(&1u16.to_be_bytes()); // TOTAL CONCURRENT COPIES
    d[36] = 1; // MAXIMUM CONCURRENT COPIES
    d[37] = 9; // DATA SEGMENT GRANULARITY: 2^9 = one block
    d[43] = implemented.len() as u8;
    d.extend_from_slice(&implemented);
    let avail = (d.len() - 4) as u32;
    d[0..4].copy_from_slice(&avail.to_be_bytes());
    d
}

/// Finds the LUN an identification descriptor target descriptor names. The LU ID TYPE, NUL
/// and RELATIVE INITIATOR PORT IDENTIFIER fields are ignored (SPC-4: obsolete or not for us).
fn resolve_target<'a>(off: usize, d: &[u8], scope: CopyScope<'a>) -> Result<&'a Lun, Sense> {
    let code_set = byte(d, 4) & 0x0F;
    let association = (byte(d, 5) >> 4) & 0x03;
    let designator_type = byte(d, 5) & 0x0F;
    let len = usize::from(byte(d, 7));
    if len > 20 {
        return Err(INVALID_FIELD_IN_PARAM.in_param(at(off + 7)));
    }
    let designator = d.get(8..8 + len).unwrap_or_default();
    // Binary NAA designator with logical unit association, as in our VPD page 0x83.
    let lun = match (code_set, association, designator_type, len) {
        (1, 0, 3, 8) => scope.find(designator),
        _ => None,
    }
    .ok_or(COPY_TARGET_NOT_REACHABLE)?;
    if byte(d, 1) & 0x1F != 0 {
        return Err(INCORRECT_COPY_TARGET_TYPE);
    }
    // Block device type specific parameters: PAD (byte 28 bit 2), DISK BLOCK LENGTH.
    let block_len = be32(d, 28) & 0x00FF_FFFF;
    if u64::from(block_len) != BLOCK_SIZE {
        return Err(INVALID_FIELD_IN_PARAM.in_param(at(off + 29)));
    }
    Ok(lun)
}

/// Validates one block device to block device segment descriptor (SPC-4 6.4.6.5).
fn plan_segment<'a>(off: usize, d: &[u8], luns: &[&'a Lun]) -> Result<Segment<'a>, Sense> {
    if usize::from(be16(d, 2)) != SEGMENT_B2B_LEN {
        return Err(INVALID_FIELD_IN_PARAM.in_param(at(off + 2)));
    }
    let lun = |i: u16| luns.get(usize::from(i)).copied();
    let src = lun(be16(d, 4)).ok_or(COPY_TARGET_NOT_REACHABLE)?;
    let dst = lun(be16(d, 6)).ok_or(COPY_TARGET_NOT_REACHABLE)?;
    // DC selects whether the count is in source or destination blocks; both are 512 bytes.
    let blocks = u64::from(be16(d, 10));
    let (src_lba, dst_lba) = (be64(d, 12), be64(d, 20));
    cdb::check_range(src_lba, blocks, src.capacity).map_err(|_| COPY_SEGMENT_FAILED)?;
    cdb::check_range(dst_lba, blocks, dst.capacity).map_err(|_| COPY_SEGMENT_FAILED)?;
    Ok(Segment {
        src,
        dst,
        blocks,
        src_lba,
        dst_lba,
    })
}

/// Copies one segment in chunks; backwards when it overlaps itself with the destination
/// after the source, so that no source block is overwritten before it is read.
fn copy_segment(s: &Segment<'_>) -> Result<(), Sense> {
    if s.blocks == 0 {
        return Ok(());
    }
    let same = std::ptr::eq(s.src, s.dst);
    let backwards = same && s.dst_lba > s.src_lba && s.dst_lba < s.src_lba + s.blocks;
    let chunks = s.blocks.div_ceil(COPY_CHUNK_BLOCKS);
    for k in 0..chunks {
        let k = if backwards { chunks - 1 - k } else { k };
        let start = k * COPY_CHUNK_BLOCKS;
        let n = (s.blocks - start).min(COPY_CHUNK_BLOCKS);
        // n <= COPY_CHUNK_BLOCKS, so it fits in u32.
        let buf = s
            .src
            .read_blocks(s.src_lba + start, n as u32)
            .map_err(|_| COPY_SEGMENT_FAILED)?;
        let _io = s.dst.io_shared();
        s.dst
            .store
            .write_at(&buf, (s.dst_lba + start) * BLOCK_SIZE)
            .map_err(|e| match write_err(e) {
                w if w.key == super::SenseKey::DataProtect => w,
                _ => COPY_SEGMENT_FAILED,
            })?;
    }
    if !s.dst.write_cache_enabled() {
        s.dst.store.flush().map_err(|_| COPY_SEGMENT_FAILED)?;
    }
    Ok(())
}
