//! INQUIRY (SPC-4 6.6) and the vital product data pages (SPC-4 7.8, SBC-3 6.6):
//! 0x00 supported pages, 0x80 unit serial number, 0x83 device identification,
//! 0xB0 block limits, 0xB1 block device characteristics, 0xB2 logical block provisioning.
//!
//! All pages are built on demand from [`LunConfig`](super::LunConfig); nothing is cached, the
//! pages are small and INQUIRY is rare.

use super::alua::{relative_port, TARGET_PORT_GROUP};
use super::capacity::LBPPB;
use super::cdb::{Cdb, MAX_ATOMIC_BLOCKS, MAX_CAW_BLOCKS, MAX_TRANSFER_BLOCKS};
use super::lun::Lun;
use super::reservation::ItNexus;
use super::sense::INVALID_FIELD_IN_CDB;
use super::{truncate, CmdResult};

/// VPD pages we implement, in ascending order (VPD 0x00 lists these).
const VPD_PAGES: [u8; 6] = [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2];

/// Largest UNMAP in blocks (512 MiB) and largest WRITE SAME in blocks, reported in VPD 0xB0.
pub(crate) const MAX_UNMAP_BLOCKS: u32 = 1 << 20;
/// Most UNMAP block descriptors in one command.
pub(crate) const MAX_UNMAP_DESCRIPTORS: u32 = 256;
/// Largest WRITE SAME, in blocks.
pub(crate) const MAX_WRITE_SAME_BLOCKS: u64 = 1 << 20;

/// Version descriptors: SAM-5, iSCSI (no version claimed), SPC-4, SBC-3.
const VERSION_DESCRIPTORS: [u16; 4] = [0x00A0, 0x0960, 0x0460, 0x04C0];

/// `s` as `n` bytes of printable ASCII, space padded (SPC-4 4.4.1).
fn ascii_field(s: &str, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s
        .bytes()
        .map(|b| if (0x20..0x7F).contains(&b) { b } else { b'_' })
        .take(n)
        .collect();
    v.resize(n, b' ');
    v
}

/// FNV-1a, to derive a stable NAA identifier from the configuration.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xFF;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Wraps a VPD page body with its 4-byte header.
fn vpd(page: u8, body: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(body.len() + 4);
    d.extend_from_slice(&[0x00, page]);
    d.extend_from_slice(&(body.len().min(0xFFFF) as u16).to_be_bytes());
    d.extend_from_slice(body);
    d
}

/// Appends one designation descriptor (SPC-4 7.8.6.1).
fn designator(out: &mut Vec<u8>, b0: u8, b1: u8, id: &[u8]) {
    out.extend_from_slice(&[b0, b1, 0, id.len().min(255) as u8]);
    out.extend_from_slice(id);
}

/// INQUIRY addressed to a LUN that does not exist: peripheral qualifier 011b.
pub(crate) fn inquiry_no_lun(c: &Cdb) -> CmdResult {
    if c.b(1) & 0x03 != 0 || c.b(2) != 0 {
        return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
    }
    let mut d = vec![0u8; 36];
    d[0] = 0x7F;
    d[2] = 0x06;
    d[3] = 0x02;
    d[4] = 31;
    Ok(truncate(d, usize::from(c.be16(3))))
}

impl Lun {
    /// INQUIRY: standard data or one VPD page, truncated to the allocation length.
    pub(crate) fn inquiry(&self, nexus: &ItNexus, c: &Cdb) -> CmdResult {
        let evpd = c.b(1) & 0x01 != 0;
        if c.b(1) & 0x02 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let page = c.b(2);
        let d = if !evpd {
            if page != 0 {
                return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into());
            }
            self.standard_inquiry()
        } else {
            match page {
                0x00 => vpd(0x00, &VPD_PAGES),
                0x80 => {
                    let n = self.config.serial.len().min(252);
                    vpd(0x80, &ascii_field(&self.config.serial, n))
                }
                0x83 => vpd(0x83, &self.device_identification(nexus)),
                0xB0 => vpd(0xB0, &self.block_limits()),
                0xB1 => vpd(0xB1, &block_characteristics()),
                0xB2 => vpd(0xB2, &self.provisioning()),
                _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into()),
            }
        };
        Ok(truncate(d, usize::from(c.be16(3))))
    }

    fn standard_inquiry(&self) -> Vec<u8> {
        let mut d = vec![0u8; 96];
        d[0] = 0x00; // peripheral qualifier 0, direct access block device
        d[1] = if self.config.removable { 0x80 } else { 0 }; // RMB
        d[2] = 0x06; // SPC-4
        d[3] = 0x12; // HISUP, response data format 2
        d[4] = (d.len() - 5) as u8;
        d[5] = 0x10 | 0x08; // TPGS = 01b: implicit ALUA; 3PC: EXTENDED COPY
        d[7] = 0x02; // CMDQUE
        d[8..16].copy_from_slice(&ascii_field(&self.config.vendor, 8));
        d[16..32].copy_from_slice(&ascii_field(&self.config.product, 16));
        d[32..36].copy_from_slice(&ascii_field(&self.config.revision, 4));
        for (i, v) in VERSION_DESCRIPTORS.iter().enumerate() {
            d[58 + 2 * i..60 + 2 * i].copy_from_slice(&v.to_be_bytes());
        }
        d
    }

    /// The NAA locally assigned (type 3) identifier of this LUN.
    pub(crate) fn naa(&self) -> [u8; 8] {
        let h = fnv1a(&[
            self.config.target_name.as_bytes(),
            self.config.serial.as_bytes(),
            &self.config.id.to_be_bytes(),
        ]);
        ((h >> 4) | (0x3u64 << 60)).to_be_bytes()
    }

    fn device_identification(&self, nexus: &ItNexus) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        // NAA, binary, logical unit association.
        designator(&mut out, 0x01, 0x03, &self.naa());
        // T10 vendor ID, ASCII: vendor (8) + product (16) + serial.
        let mut t10 = ascii_field(&self.config.vendor, 8);
        t10.extend_from_slice(&ascii_field(&self.config.product, 16));
        t10.extend(
            self.config
                .serial
                .bytes()
                .filter(u8::is_ascii_graphic)
                .take(200),
        );
        designator(&mut out, 0x02, 0x01, &t10);
        // Relative target port and target port group: iSCSI, PIV, target port association.
        let port = relative_port(nexus).to_be_bytes();
        designator(&mut out, 0x51, 0x94, &[0, 0, port[0], port[1]]);
        let tpg = TARGET_PORT_GROUP.to_be_bytes();
        designator(&mut out, 0x51, 0x95, &[0, 0, tpg[0], tpg[1]]);
        // SCSI name string of the target device: UTF-8, NUL terminated, padded to 4 bytes.
        let mut name: Vec<u8> = self.config.target_name.bytes().take(223).collect();
        name.push(0);
        while name.len() % 4 != 0 {
            name.push(0);
        }
        designator(&mut out, 0x53, 0xA8, &name);
        out
    }

    fn block_limits(&self) -> Vec<u8> {
        let mut b = vec![0u8; 60];
        // WSNZ = 0: WRITE SAME with 0 blocks writes up to the end of the medium.
        b[1] = MAX_CAW_BLOCKS as u8;
        // OPTIMAL TRANSFER LENGTH GRANULARITY: one physical block (READ CAPACITY (16) LBPPBE).
        b[2..4].copy_from_slice(&(LBPPB as u16).to_be_bytes());
        b[4..8].copy_from_slice(&MAX_TRANSFER_BLOCKS.to_be_bytes());
        // OPTIMAL TRANSFER LENGTH stays 0 (not reported): Linux would otherwise cap its request
        // size to it and mkfs would take it for a RAID stripe width.
        if self.config.thin_provisioning {
            b[16..20].copy_from_slice(&MAX_UNMAP_BLOCKS.to_be_bytes());
            b[20..24].copy_from_slice(&MAX_UNMAP_DESCRIPTORS.to_be_bytes());
            b[24..28].copy_from_slice(&LBPPB.to_be_bytes()); // unmap granularity: physical block
            b[28..32].copy_from_slice(&0x8000_0000u32.to_be_bytes()); // UGAVALID, alignment 0
        }
        b[32..40].copy_from_slice(&MAX_WRITE_SAME_BLOCKS.to_be_bytes());
        // MAXIMUM ATOMIC TRANSFER LENGTH (WRITE ATOMIC (16)). ATOMIC ALIGNMENT and ATOMIC
        // TRANSFER LENGTH GRANULARITY 0: no restriction. Atomic boundaries: not supported.
        b[40..44].copy_from_slice(&MAX_ATOMIC_BLOCKS.to_be_bytes());
        b
    }

    fn provisioning(&self) -> Vec<u8> {
        let mut b = vec![0u8; 4];
        if self.config.thin_provisioning {
            // LBPU, LBPWS, LBPWS10, LBPRZ (unmapped blocks read as zeros).
            b[1] = 0x80 | 0x40 | 0x20 | 0x04;
            b[2] = 0x02; // provisioning type: thin
        }
        b
    }
}

fn block_characteristics() -> Vec<u8> {
    let mut b = vec![0u8; 60];
    b[0..2].copy_from_slice(&1u16.to_be_bytes()); // non-rotating medium
    b
}
