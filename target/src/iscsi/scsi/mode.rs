//! MODE SENSE (6/10) and MODE SELECT (6/10) (SPC-4 6.11-6.14) with the read-write error
//! recovery (0x01), caching (0x08, SBC-3 6.4.5), control (0x0A, SPC-4 7.5.8) and informational
//! exceptions control (0x1C) pages, plus 0x3F for all of them.
//!
//! Only WCE in the caching page and SWP in the control page are changeable: WCE switches the
//! LUN between write-back and write-through at run time, SWP write-protects it. Saved pages are not supported (PC = 3 and SP = 1 are refused).
//! The device-specific parameter carries WP for read-only LUNs and DPOFUA (we honour FUA).

use super::cdb::{Cdb, MODE_SELECT_10, MODE_SENSE_10};
use super::lun::Lun;
use super::reservation::ItNexus;
use super::sense::{
    self, INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAM, PARAM_LIST_LENGTH, SAVING_NOT_SUPPORTED,
};
use super::{truncate, CmdResult};
use crate::iscsi::backstore::BLOCK_SIZE;

/// Page control: which values MODE SENSE reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageControl {
    Current,
    Changeable,
    Default,
}

/// Pages in the order 0x3F returns them.
const PAGES: [u8; 4] = [0x01, 0x08, 0x0A, 0x1C];

impl Lun {
    fn mode_page(
        &self,
        code: u8,
        pc: PageControl,
        (wce_now, swp_now): (bool, bool),
    ) -> Option<Vec<u8>> {
        let changeable = pc == PageControl::Changeable;
        Some(match code {
            0x01 => {
                let mut p = vec![0u8; 12];
                p[0] = 0x01;
                p[1] = 0x0A;
                p
            }
            0x08 => {
                let mut p = vec![0u8; 20];
                p[0] = 0x08;
                p[1] = 0x12;
                let wce = match pc {
                    PageControl::Current => wce_now,
                    PageControl::Default => self.config.write_cache,
                    PageControl::Changeable => true,
                };
                p[2] = if wce { 0x04 } else { 0 };
                p
            }
            0x0A => {
                let mut p = vec![0u8; 12];
                p[0] = 0x0A;
                p[1] = 0x0A;
                let swp = match pc {
                    PageControl::Current => swp_now,
                    PageControl::Default => false,
                    PageControl::Changeable => true,
                };
                p[4] = if swp { 0x08 } else { 0 };
                if !changeable {
                    p[3] = 0x10; // queue algorithm modifier 1: unrestricted reordering
                    p[8..10].copy_from_slice(&0xFFFFu16.to_be_bytes()); // busy timeout: unlimited
                }
                p
            }
            0x1C => {
                let mut p = vec![0u8; 12];
                p[0] = 0x1C;
                p[1] = 0x0A;
                p
            }
            _ => return None,
        })
    }

    /// MODE SENSE (6) and (10).
    pub(crate) fn mode_sense(&self, c: &Cdb) -> CmdResult {
        let ten = c.opcode() == MODE_SENSE_10;
        let dbd = c.b(1) & 0x08 != 0;
        let llba = ten && c.b(1) & 0x10 != 0;
        let pc = match c.b(2) >> 6 {
            0 => PageControl::Current,
            1 => PageControl::Changeable,
            2 => PageControl::Default,
            _ => return Err(SAVING_NOT_SUPPORTED.in_cdb(2).into()),
        };
        let page = c.b(2) & 0x3F;
        let subpage = c.b(3);
        let alloc = if ten {
            usize::from(c.be16(7))
        } else {
            usize::from(c.b(4))
        };
        if subpage != 0 && subpage != 0xFF {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(3).into());
        }
        let now = self.mode();
        let mut pages = Vec::with_capacity(64);
        if page == 0x3F {
            for code in PAGES {
                pages.extend(self.mode_page(code, pc, now).unwrap_or_default());
            }
        } else {
            let p = self
                .mode_page(page, pc, now)
                .ok_or(INVALID_FIELD_IN_CDB.in_cdb(2))?;
            pages.extend(p);
        }
        let mut bd = Vec::new();
        if !dbd {
            if llba {
                bd.extend_from_slice(&self.capacity.to_be_bytes());
                bd.extend_from_slice(&[0; 4]);
                bd.extend_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
            } else {
                let n = u32::try_from(self.capacity).unwrap_or(u32::MAX);
                bd.extend_from_slice(&n.to_be_bytes());
                bd.extend_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
            }
        }
        // WP for read-only or software write protected LUNs, DPOFUA always.
        let dsp = if self.config.read_only || now.1 {
            0x80
        } else {
            0
        } | 0x10;
        let mut d = Vec::with_capacity(8 + bd.len() + pages.len());
        if ten {
            let total = 8 + bd.len() + pages.len();
            d.extend_from_slice(&((total - 2).min(0xFFFF) as u16).to_be_bytes());
            d.extend_from_slice(&[0, dsp, u8::from(llba && !dbd), 0]);
            d.extend_from_slice(&(bd.len() as u16).to_be_bytes());
        } else {
            let total = 4 + bd.len() + pages.len();
            d.extend_from_slice(&[(total - 1).min(0xFF) as u8, 0, dsp, bd.len() as u8]);
        }
        d.extend(bd);
        d.extend(pages);
        Ok(truncate(d, alloc))
    }

    /// MODE SELECT (6) and (10): validates the whole parameter list, then applies WCE.
    pub(crate) fn mode_select(&self, nexus: &ItNexus, c: &Cdb, data: &[u8]) -> CmdResult {
        let ten = c.opcode() == MODE_SELECT_10;
        if c.b(1) & 0x01 != 0 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let plen = if ten {
            usize::from(c.be16(7))
        } else {
            usize::from(c.b(4))
        };
        if plen == 0 {
            return Ok(Vec::new());
        }
        let p = data.get(..plen).ok_or(sense::INVALID_FIELD_IN_IU)?;
        let hdr = if ten { 8 } else { 4 };
        if plen < hdr {
            return Err(PARAM_LIST_LENGTH.into());
        }
        let (bdl, long) = if ten {
            (
                usize::from(u16::from_be_bytes([p[6], p[7]])),
                p[4] & 0x01 != 0,
            )
        } else {
            (usize::from(p[3]), false)
        };
        let dlen = if long { 16 } else { 8 };
        let bds = p.get(hdr..hdr + bdl).ok_or(PARAM_LIST_LENGTH)?;
        if bdl % dlen != 0 {
            return Err(INVALID_FIELD_IN_PARAM
                .in_param(if ten { 6 } else { 3 })
                .into());
        }
        for (i, d) in bds.chunks_exact(dlen).enumerate() {
            let bl = if long {
                u32::from_be_bytes([d[12], d[13], d[14], d[15]])
            } else {
                u32::from_be_bytes([0, d[5], d[6], d[7]])
            };
            if u64::from(bl) != BLOCK_SIZE {
                return Err(INVALID_FIELD_IN_PARAM
                    .in_param((hdr + i * dlen) as u16)
                    .into());
            }
        }
        let mut pos = hdr + bdl;
        let (mut new_wce, mut new_swp) = (None, None);
        while pos < plen {
            let head = p.get(pos..pos + 2).ok_or(PARAM_LIST_LENGTH)?;
            let (code, spf, len) = (head[0] & 0x3F, head[0] & 0x40 != 0, usize::from(head[1]));
            let page = p.get(pos..pos + 2 + len).ok_or(PARAM_LIST_LENGTH)?;
            let want = match code {
                0x08 => 0x12,
                0x01 | 0x0A | 0x1C => 0x0A,
                _ => 0,
            };
            if spf || want == 0 || len != want {
                return Err(INVALID_FIELD_IN_PARAM.in_param(pos as u16).into());
            }
            match code {
                0x08 => new_wce = Some(page[2] & 0x04 != 0),
                0x0A => new_swp = Some(page[4] & 0x08 != 0),
                _ => {}
            }
            pos += 2 + len;
        }
        let mut st = self.state();
        let (wce, swp) = self.mode();
        if self.set_mode(new_wce.unwrap_or(wce), new_swp.unwrap_or(swp)) {
            st.ua_all(sense::UA_MODE_CHANGED, Some(nexus));
        }
        Ok(Vec::new())
    }
}
