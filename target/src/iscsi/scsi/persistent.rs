//! PERSISTENT RESERVE IN and OUT (SPC-4 5.9, 6.15, 6.16): registrations, the six reservation
//! types, and READ KEYS / READ RESERVATION / REPORT CAPABILITIES / READ FULL STATUS (with iSCSI
//! TransportIDs, SPC-4 7.6.4.6).
//!
//! Registrations and the reservation are keyed by [`ItNexus`]. State is not persisted across
//! restarts, so APTPL is refused (PTPL_C = 0), and SPEC_I_PT / ALL_TG_PT are refused too
//! (SIP_C = ATP_C = 0). REGISTER AND MOVE answers INVALID FIELD IN CDB. PREEMPT AND ABORT is
//! PREEMPT here; aborting the preempted nexuses' tasks is the transport's job.

use super::alua::relative_port;
use super::cdb::Cdb;
use super::lun::{Lun, LunState};
use super::reservation::ItNexus;
use super::sense::{self, INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAM, PARAM_LIST_LENGTH};
use super::{truncate, CmdResult, Failure};

/// Persistent reservation types (SPC-4 table 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrType {
    WriteExclusive = 1,
    ExclusiveAccess = 3,
    WriteExclusiveRegistrantsOnly = 5,
    ExclusiveAccessRegistrantsOnly = 6,
    WriteExclusiveAllRegistrants = 7,
    ExclusiveAccessAllRegistrants = 8,
}

impl PrType {
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::WriteExclusive,
            3 => Self::ExclusiveAccess,
            5 => Self::WriteExclusiveRegistrantsOnly,
            6 => Self::ExclusiveAccessRegistrantsOnly,
            7 => Self::WriteExclusiveAllRegistrants,
            8 => Self::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    fn all_registrants(self) -> bool {
        matches!(
            self,
            Self::WriteExclusiveAllRegistrants | Self::ExclusiveAccessAllRegistrants
        )
    }

    fn registrants_have_access(self) -> bool {
        !matches!(self, Self::WriteExclusive | Self::ExclusiveAccess)
    }

    fn exclusive_access(self) -> bool {
        matches!(
            self,
            Self::ExclusiveAccess
                | Self::ExclusiveAccessRegistrantsOnly
                | Self::ExclusiveAccessAllRegistrants
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Reservation {
    holder: ItNexus,
    kind: PrType,
}

/// Registrations and the persistent reservation of one LUN.
#[derive(Debug, Default)]
pub(crate) struct PrState {
    generation: u32,
    /// Registered nexuses and their keys, in registration order.
    registrations: Vec<(ItNexus, u64)>,
    reservation: Option<Reservation>,
}

impl PrState {
    fn key_of(&self, n: &ItNexus) -> Option<u64> {
        self.registrations
            .iter()
            .find(|(r, _)| r == n)
            .map(|&(_, k)| k)
    }

    fn is_holder(&self, n: &ItNexus) -> bool {
        match &self.reservation {
            Some(r) if r.kind.all_registrants() => self.key_of(n).is_some(),
            Some(r) => &r.holder == n,
            None => false,
        }
    }

    /// Whether any registration or reservation exists (RESERVE(6) then conflicts).
    pub(crate) fn active(&self) -> bool {
        !self.registrations.is_empty() || self.reservation.is_some()
    }

    fn unregister(&mut self, n: &ItNexus) {
        self.registrations.retain(|(r, _)| r != n);
        let drop_res = match &self.reservation {
            Some(r) if r.kind.all_registrants() => self.registrations.is_empty(),
            Some(r) => &r.holder == n,
            None => false,
        };
        if drop_res {
            self.reservation = None;
        }
    }

    /// Whether a command from `nexus` conflicts with the persistent reservation; `writes` is
    /// false for commands that only read (allowed under the Write Exclusive types).
    pub(crate) fn conflicts(&self, nexus: &ItNexus, writes: bool) -> bool {
        let Some(res) = &self.reservation else {
            return false;
        };
        if self.is_holder(nexus) {
            return false;
        }
        if res.kind.registrants_have_access() && self.key_of(nexus).is_some() {
            return false;
        }
        res.kind.exclusive_access() || writes
    }
}

impl Lun {
    /// PERSISTENT RESERVE IN (SPC-4 6.15): READ KEYS, READ RESERVATION, REPORT CAPABILITIES
    /// and READ FULL STATUS.
    pub(crate) fn pr_in(&self, c: &Cdb) -> CmdResult {
        let alloc = usize::from(c.be16(7));
        let st = self.state();
        let pr = &st.pr;
        let mut d = Vec::with_capacity(64);
        match c.service_action() {
            0 => {
                d.extend_from_slice(&pr.generation.to_be_bytes());
                let len = (pr.registrations.len() * 8) as u32;
                d.extend_from_slice(&len.to_be_bytes());
                for (_, k) in &pr.registrations {
                    d.extend_from_slice(&k.to_be_bytes());
                }
            }
            1 => {
                d.extend_from_slice(&pr.generation.to_be_bytes());
                match &pr.reservation {
                    None => d.extend_from_slice(&0u32.to_be_bytes()),
                    Some(r) => {
                        d.extend_from_slice(&16u32.to_be_bytes());
                        // All-registrants reservations report key 0 (SPC-4 6.15.3.3).
                        let key = if r.kind.all_registrants() {
                            0
                        } else {
                            pr.key_of(&r.holder).unwrap_or(0)
                        };
                        d.extend_from_slice(&key.to_be_bytes());
                        d.extend_from_slice(&[0, 0, 0, 0, 0, r.kind as u8, 0, 0]);
                    }
                }
            }
            2 => {
                // LENGTH 8; CRH, SIP_C, ATP_C, PTPL_C = 0 (RESERVE(6) and RELEASE(6) simply
                // conflict while any registration exists). TMV = 1, ALLOW COMMANDS = 0.
                d.extend_from_slice(&[0, 8, 0x00, 0x80]);
                // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX | EX_AC_AR.
                d.extend_from_slice(&[0x80 | 0x40 | 0x20 | 0x08 | 0x02, 0x01, 0, 0]);
            }
            3 => {
                d.extend_from_slice(&pr.generation.to_be_bytes());
                d.extend_from_slice(&[0; 4]);
                for (n, key) in &pr.registrations {
                    let holder = pr.is_holder(n);
                    let kind = match &pr.reservation {
                        Some(r) if holder => r.kind as u8,
                        _ => 0,
                    };
                    let tid = transport_id(n);
                    d.extend_from_slice(&key.to_be_bytes());
                    d.extend_from_slice(&[0, 0, 0, 0, u8::from(holder), kind, 0, 0, 0, 0]);
                    d.extend_from_slice(&relative_port(n).to_be_bytes());
                    d.extend_from_slice(&(tid.len() as u32).to_be_bytes());
                    d.extend_from_slice(&tid);
                }
                let len = (d.len() - 8) as u32;
                d[4..8].copy_from_slice(&len.to_be_bytes());
            }
            _ => return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into()),
        }
        Ok(truncate(d, alloc))
    }

    /// PERSISTENT RESERVE OUT (SPC-4 6.16) with the basic 24-byte parameter list.
    pub(crate) fn pr_out(&self, nexus: &ItNexus, c: &Cdb, data: &[u8]) -> CmdResult {
        let sa = c.service_action();
        if sa > 6 {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(1).into());
        }
        let scope = c.b(2) >> 4;
        let type_code = c.b(2) & 0x0F;
        if c.be32(5) != 24 {
            return Err(PARAM_LIST_LENGTH.into());
        }
        let p = data.get(..24).ok_or(sense::INVALID_FIELD_IN_IU)?;
        let be64 = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[o..o + 8]);
            u64::from_be_bytes(b)
        };
        let (rk, sark) = (be64(0), be64(8));
        let flags = p[20];
        // SPEC_I_PT (bit 3), ALL_TG_PT (bit 2) and APTPL (bit 0) are not supported.
        if flags & 0x0D != 0 {
            return Err(INVALID_FIELD_IN_PARAM.in_param(20).into());
        }
        let needs_type = matches!(sa, 1 | 2 | 4 | 5);
        let kind = PrType::from_code(type_code);
        if needs_type && (scope != 0 || kind.is_none()) {
            return Err(INVALID_FIELD_IN_CDB.in_cdb(2).into());
        }
        let mut st = self.state();
        if matches!(sa, 0 | 6) {
            return register(&mut st, nexus, rk, sark, sa == 6);
        }
        // Every other action needs a registered nexus with the right key.
        if st.pr.key_of(nexus) != Some(rk) {
            return Err(Failure::Conflict);
        }
        // Validated above for the actions that use it; CLEAR ignores it.
        let kind = kind.unwrap_or(PrType::WriteExclusive);
        match sa {
            1 => reserve(&mut st.pr, nexus, kind),
            2 => release(&mut st, nexus, kind),
            3 => {
                let others: Vec<ItNexus> = st
                    .pr
                    .registrations
                    .iter()
                    .map(|(n, _)| n.clone())
                    .filter(|n| n != nexus)
                    .collect();
                st.pr.registrations.clear();
                st.pr.reservation = None;
                st.pr.generation = st.pr.generation.wrapping_add(1);
                for n in others {
                    st.ua_one(&n, sense::UA_RESERVATIONS_PREEMPTED);
                }
                Ok(Vec::new())
            }
            _ => preempt(&mut st, nexus, sark, kind),
        }
    }
}

/// iSCSI TransportID (SPC-4 7.6.4.6) of the initiator port: format 01b ("name,i,0x<isid>")
/// when the port name carries an ISID, 00b otherwise; NUL terminated, padded to a multiple of
/// 4 and to at least 20 bytes.
fn transport_id(n: &ItNexus) -> Vec<u8> {
    let name = n.initiator_port().as_bytes();
    let format = if n.initiator_port().contains(",i,0x") {
        0x40
    } else {
        0x00
    };
    let mut body: Vec<u8> = name.iter().copied().take(0xFF00).collect();
    body.push(0);
    while body.len() % 4 != 0 || body.len() < 20 {
        body.push(0);
    }
    let mut t = vec![format | 0x05, 0];
    t.extend_from_slice(&(body.len() as u16).to_be_bytes());
    t.extend(body);
    t
}

/// REGISTER (`ignore` false) and REGISTER AND IGNORE EXISTING KEY (`ignore` true).
fn register(st: &mut LunState, n: &ItNexus, rk: u64, sark: u64, ignore: bool) -> CmdResult {
    let pr = &mut st.pr;
    match pr.key_of(n) {
        None => {
            if !ignore && rk != 0 {
                return Err(Failure::Conflict);
            }
            if sark != 0 {
                pr.registrations.push((n.clone(), sark));
                pr.generation = pr.generation.wrapping_add(1);
            }
        }
        Some(k) => {
            if !ignore && k != rk {
                return Err(Failure::Conflict);
            }
            if sark == 0 {
                pr.unregister(n);
            } else if let Some(e) = pr.registrations.iter_mut().find(|(r, _)| r == n) {
                e.1 = sark;
            }
            pr.generation = pr.generation.wrapping_add(1);
        }
    }
    Ok(Vec::new())
}

fn reserve(pr: &mut PrState, n: &ItNexus, kind: PrType) -> CmdResult {
    match &pr.reservation {
        None => {
            pr.reservation = Some(Reservation {
                holder: n.clone(),
                kind,
            });
            Ok(Vec::new())
        }
        Some(r) if pr.is_holder(n) && r.kind == kind => Ok(Vec::new()),
        Some(_) => Err(Failure::Conflict),
    }
}

fn release(st: &mut LunState, n: &ItNexus, kind: PrType) -> CmdResult {
    let Some(r) = st.pr.reservation.clone() else {
        return Ok(Vec::new());
    };
    if !st.pr.is_holder(n) {
        return Ok(Vec::new());
    }
    if r.kind != kind {
        return Err(sense::INVALID_RELEASE.into());
    }
    st.pr.reservation = None;
    if r.kind.registrants_have_access() {
        let others: Vec<ItNexus> = st
            .pr
            .registrations
            .iter()
            .map(|(x, _)| x.clone())
            .filter(|x| x != n)
            .collect();
        for o in others {
            st.ua_one(&o, sense::UA_RESERVATIONS_RELEASED);
        }
    }
    Ok(Vec::new())
}

/// PREEMPT (and PREEMPT AND ABORT, whose task aborts are the transport's job).
fn preempt(st: &mut LunState, n: &ItNexus, sark: u64, kind: PrType) -> CmdResult {
    let pr = &mut st.pr;
    let res = pr.reservation.clone();
    let all_reg = res.as_ref().is_some_and(|r| r.kind.all_registrants());
    let holder_key = res.as_ref().and_then(|r| pr.key_of(&r.holder));
    let take_over = match &res {
        Some(_) if all_reg => sark == 0,
        Some(_) => holder_key == Some(sark),
        None => false,
    };
    if sark == 0 && !take_over {
        return Err(INVALID_FIELD_IN_PARAM.in_param(8).into());
    }
    let victims: Vec<ItNexus> = pr
        .registrations
        .iter()
        .filter(|(r, k)| r != n && (*k == sark || (all_reg && sark == 0)))
        .map(|(r, _)| r.clone())
        .collect();
    if victims.is_empty() && !take_over {
        return Err(Failure::Conflict);
    }
    pr.registrations.retain(|(r, _)| !victims.contains(r));
    if take_over {
        pr.reservation = Some(Reservation {
            holder: n.clone(),
            kind,
        });
    } else if let Some(r) = &pr.reservation {
        if !r.kind.all_registrants() && pr.key_of(&r.holder).is_none() {
            pr.reservation = None;
        }
    }
    pr.generation = pr.generation.wrapping_add(1);
    for v in victims {
        st.ua_one(&v, sense::UA_REGISTRATIONS_PREEMPTED);
    }
    Ok(Vec::new())
}
