//! Logical units and the LUN set: configuration, shared state and command dispatch
//! (SAM-5 5.14 task attributes aside, SPC-4 5.14 unit attention, SPC-4 5.9 reservations).
//!
//! A [`Lun`] is shared by every connection that reaches it (`Arc<Lun>`, `&self` methods).
//! Mutable state (mode pages, reservations, unit attentions, medium presence) sits behind
//! one short-lived `Mutex`; data I/O goes to the thread-safe [`Backstore`] without it, under a
//! per-LUN medium `RwLock` that plain I/O takes shared and WRITE ATOMIC (16), COMPARE AND WRITE
//! and ORWRITE take exclusively (see `rw.rs`).
//! [`LunSet`] routes a command to its LUN and answers REPORT LUNS and commands for LUNs that do
//! not exist.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::capacity::read_defect_data;
use super::cdb::{self, Cdb, Transfer};
use super::persistent::PrState;
use super::reservation::ItNexus;
use super::sense::{self, Sense};
use super::xcopy::{CopyResult, CopyScope};
use super::{CmdResult, ScsiResult};
use crate::iscsi::backstore::{Backstore, BLOCK_SIZE};

/// Static configuration of one LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunConfig {
    /// LUN number (0..16383).
    pub id: u64,
    /// Reject every command that would modify the medium with DATA PROTECT.
    pub read_only: bool,
    /// Initial write-back cache state (mode page 0x08 WCE). `false` is write-through: every
    /// write is followed by `fdatasync` before GOOD status is returned.
    pub write_cache: bool,
    /// Report logical block provisioning (LBPME, UNMAP, WRITE SAME with UNMAP).
    pub thin_provisioning: bool,
    /// Unit serial number (VPD 0x80), ASCII.
    pub serial: String,
    /// T10 vendor identification, up to 8 ASCII characters.
    pub vendor: String,
    /// Product identification, up to 16 ASCII characters.
    pub product: String,
    /// Product revision level, up to 4 ASCII characters.
    pub revision: String,
    /// iSCSI target name, reported as a SCSI name string in VPD 0x83.
    pub target_name: String,
    /// Report POWER ON OCCURRED to each I_T nexus on its first command.
    pub power_on_unit_attention: bool,
    /// Report a removable medium (RMB = 1): START STOP UNIT with LOEJ ejects and loads it,
    /// and PREVENT ALLOW MEDIUM REMOVAL can forbid that.
    pub removable: bool,
}

impl LunConfig {
    /// A read-write, write-back, thin-provisioned LUN with default identification strings.
    pub fn new(id: u64, target_name: &str, serial: &str) -> Self {
        Self {
            id,
            read_only: false,
            write_cache: true,
            thin_provisioning: true,
            serial: serial.to_owned(),
            vendor: "PXEROOT".to_owned(),
            product: "VIRTUAL-DISK".to_owned(),
            revision: "0001".to_owned(),
            target_name: target_name.to_owned(),
            power_on_unit_attention: false,
            removable: false,
        }
    }
}

/// Mutable per-LUN state.
#[derive(Debug)]
pub(crate) struct LunState {
    /// `false` after a removable medium was ejected by START STOP UNIT.
    pub(crate) medium_present: bool,
    /// Nexuses that sent PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 1.
    pub(crate) prevent: HashSet<ItNexus>,
    /// Pending unit attentions per I_T nexus, oldest first.
    pub(crate) ua: HashMap<ItNexus, VecDeque<Sense>>,
    /// Nexuses that have sent at least one command (for power-on unit attention).
    pub(crate) seen: HashSet<ItNexus>,
    /// SPC-2 RESERVE(6) holder.
    pub(crate) reserved_by: Option<ItNexus>,
    /// Persistent reservations and registrations.
    pub(crate) pr: PrState,
    /// EXTENDED COPY results held for RECEIVE COPY RESULTS, by nexus and list identifier.
    pub(crate) copies: HashMap<(ItNexus, u8), CopyResult>,
}

impl LunState {
    /// Queues `ua` for every nexus we know except `except`.
    pub(crate) fn ua_all(&mut self, ua: Sense, except: Option<&ItNexus>) {
        let known: Vec<ItNexus> = self.seen.iter().cloned().collect();
        for n in known {
            if Some(&n) != except {
                self.ua_one(&n, ua);
            }
        }
    }

    /// Takes the oldest unit attention pending for `nexus`.
    pub(crate) fn pop_ua(&mut self, nexus: &ItNexus) -> Option<Sense> {
        if self.ua.is_empty() {
            return None;
        }
        let q = self.ua.get_mut(nexus)?;
        let ua = q.pop_front();
        if q.is_empty() {
            self.ua.remove(nexus);
        }
        ua
    }

    /// Queues `ua` for `nexus` (at most once, at most 8 pending).
    pub(crate) fn ua_one(&mut self, nexus: &ItNexus, ua: Sense) {
        let q = self.ua.entry(nexus.clone()).or_default();
        if !q.contains(&ua) && q.len() < 8 {
            q.push_back(ua);
        }
    }
}

/// One disk logical unit over a [`Backstore`].
#[derive(Debug)]
pub struct Lun {
    pub(crate) config: LunConfig,
    pub(crate) store: Arc<dyn Backstore>,
    /// Capacity in logical blocks.
    pub(crate) capacity: u64,
    state: Mutex<LunState>,
    /// Write cache enabled (mode page 0x08 WCE); atomics keep the write path lock-free.
    wce: AtomicBool,
    /// Software write protect (control mode page SWP).
    swp: AtomicBool,
    /// Medium lock. Every command that reads or writes blocks holds it shared for its I/O;
    /// WRITE ATOMIC (16), COMPARE AND WRITE and ORWRITE hold it exclusively, which makes them
    /// atomic with respect to every other command on this LUN (see `rw.rs`).
    io: RwLock<()>,
}

impl Lun {
    /// Creates a LUN; its capacity is the backstore length rounded down to whole blocks.
    pub fn new(config: LunConfig, store: Arc<dyn Backstore>) -> Self {
        let capacity = store.len() / BLOCK_SIZE;
        Self {
            state: Mutex::new(LunState {
                medium_present: true,
                prevent: HashSet::new(),
                ua: HashMap::new(),
                seen: HashSet::new(),
                reserved_by: None,
                pr: PrState::default(),
                copies: HashMap::new(),
            }),
            wce: AtomicBool::new(config.write_cache),
            swp: AtomicBool::new(false),
            config,
            store,
            capacity,
            io: RwLock::new(()),
        }
    }

    /// The configuration this LUN was built with.
    pub fn config(&self) -> &LunConfig {
        &self.config
    }

    /// Capacity in 512-byte blocks.
    pub fn capacity_blocks(&self) -> u64 {
        self.capacity
    }

    /// Locks the shared state, recovering from a poisoned lock (the state stays consistent
    /// because every critical section is a few plain assignments).
    pub(crate) fn state(&self) -> MutexGuard<'_, LunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the medium lock shared (plain reads and writes).
    pub(crate) fn io_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.io.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the medium lock exclusively (atomic commands). Never while holding it shared.
    pub(crate) fn io_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.io.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether writes currently go to a write-back cache (mode page 0x08 WCE).
    pub fn write_cache_enabled(&self) -> bool {
        self.wce.load(Ordering::Relaxed)
    }

    /// Sets WCE and SWP (MODE SELECT); returns whether either changed.
    pub(crate) fn set_mode(&self, wce: bool, swp: bool) -> bool {
        let old_wce = self.wce.swap(wce, Ordering::Relaxed);
        let old_swp = self.swp.swap(swp, Ordering::Relaxed);
        (old_wce, old_swp) != (wce, swp)
    }

    /// Current (WCE, SWP).
    pub(crate) fn mode(&self) -> (bool, bool) {
        (
            self.wce.load(Ordering::Relaxed),
            self.swp.load(Ordering::Relaxed),
        )
    }

    /// How many bytes of Data-Out `cdb` expects and how much Data-In it may return, so the
    /// transport can issue R2Ts before executing. Never fails; unknown CDBs move nothing.
    ///
    /// On a write-protected LUN, WRITE SAME and COMPARE AND WRITE fail with DATA PROTECT
    /// before their data is looked at, so they want none and no exact size: the transport
    /// then executes them whatever the Expected Data Transfer Length, and the initiator gets
    /// WRITE PROTECTED rather than INVALID FIELD IN CDB.
    pub fn transfer(&self, cdb: &[u8]) -> Transfer {
        let t = cdb::transfer_for(&Cdb::new(cdb));
        if t.exact && self.write_protected() {
            return Transfer::default();
        }
        t
    }

    /// LOGICAL UNIT RESET (SAM-5 6.3): releases the RESERVE(6) reservation, clears PREVENT,
    /// restores the mode pages to their defaults and queues a unit attention (29/00) for every
    /// I_T nexus, the issuing one included as SAM-5 requires; `issuer` makes sure it is known
    /// even if it never sent a command to this LUN. Persistent reservations and a removed
    /// medium stay as they are.
    pub fn reset(&self, issuer: Option<&ItNexus>) {
        let mut st = self.state();
        if let Some(n) = issuer {
            if !st.seen.contains(n) {
                st.seen.insert(n.clone());
            }
        }
        st.reserved_by = None;
        st.prevent.clear();
        self.set_mode(self.config.write_cache, false);
        st.ua_all(sense::UA_LU_RESET, None);
    }

    /// Whether writes are refused: a read-only LUN or software write protect (SWP).
    pub(crate) fn write_protected(&self) -> bool {
        self.config.read_only || self.swp.load(Ordering::Relaxed)
    }

    /// I_T nexus loss (session closed): drops its RESERVE(6) reservation, its PREVENT, its
    /// pending UAs and its held EXTENDED COPY results. Persistent reservations survive.
    pub fn nexus_lost(&self, nexus: &ItNexus) {
        let mut st = self.state();
        if st.reserved_by.as_ref() == Some(nexus) {
            st.reserved_by = None;
        }
        st.prevent.remove(nexus);
        st.ua.remove(nexus);
        st.seen.remove(nexus);
        if !st.copies.is_empty() {
            st.copies.retain(|(n, _), _| n != nexus);
        }
    }

    /// Executes one command from `nexus` and returns its status, Data-In and sense data.
    ///
    /// `data_out` is all the Data-Out the initiator sent for this command: the transport
    /// solicits `min(EDTL, transfer(cdb).data_out)` bytes with R2Ts, plus whatever arrived
    /// unsolicited. If it is shorter than the CDB needs, the command fails with INVALID FIELD
    /// IN COMMAND INFORMATION UNIT and nothing is written; extra bytes are ignored, except for
    /// WRITE SAME and COMPARE AND WRITE, whose Data-Out must be exactly one block / two times
    /// NUMBER OF LOGICAL BLOCKS. REPORT LUNS lists only this LUN and EXTENDED COPY reaches only
    /// this LUN; use [`LunSet::execute`] to report and reach every LUN. Blocking: this does file I/O on the calling thread.
    pub fn execute(&self, nexus: &ItNexus, cdb: &[u8], data_out: &[u8]) -> ScsiResult {
        self.execute_in(nexus, cdb, data_out, None)
    }

    fn execute_in(
        &self,
        nexus: &ItNexus,
        raw: &[u8],
        data: &[u8],
        set: Option<&LunSet>,
    ) -> ScsiResult {
        if raw.is_empty() {
            return ScsiResult::check(sense::INVALID_OPCODE);
        }
        let c = Cdb::new(raw);
        if let Err(f) = self.precheck(nexus, &c) {
            return Err(f).into();
        }
        self.dispatch(nexus, &c, data, set).into()
    }

    /// Unit attention, reservation conflict and NOT READY checks, in SAM-5 order.
    fn precheck(&self, nexus: &ItNexus, c: &Cdb) -> Result<(), super::Failure> {
        let op = c.opcode();
        let mut st = self.state();
        if !st.seen.contains(nexus) {
            st.seen.insert(nexus.clone());
            if self.config.power_on_unit_attention {
                st.ua_one(nexus, sense::UA_POWER_ON);
            }
        }
        if !matches!(op, cdb::INQUIRY | cdb::REPORT_LUNS | cdb::REQUEST_SENSE) {
            if let Some(ua) = st.pop_ua(nexus) {
                return Err(ua.into());
            }
        }
        if self.reservation_conflict(&st, nexus, c) {
            return Err(super::Failure::Conflict);
        }
        if !st.medium_present && is_media_access(op) {
            return Err(sense::MEDIUM_NOT_PRESENT.into());
        }
        Ok(())
    }

    fn dispatch(&self, nexus: &ItNexus, c: &Cdb, data: &[u8], set: Option<&LunSet>) -> CmdResult {
        use cdb::*;
        match c.opcode() {
            TEST_UNIT_READY => Ok(Vec::new()),
            REQUEST_SENSE => self.request_sense(nexus, c),
            INQUIRY => self.inquiry(nexus, c),
            READ_6 | READ_10 | READ_12 | READ_16 => self.read(c),
            WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => self.write(c, data),
            WRITE_VERIFY_10 | WRITE_VERIFY_12 | WRITE_VERIFY_16 => self.write(c, data),
            WRITE_ATOMIC_16 => self.write_atomic(c, data),
            ORWRITE_16 => self.orwrite(c, data),
            PREFETCH_10 | PREFETCH_16 => self.prefetch(c),
            READ_DEFECT_DATA_10 | READ_DEFECT_DATA_12 => read_defect_data(c),
            VERIFY_10 | VERIFY_12 | VERIFY_16 => self.verify(c, data),
            COMPARE_AND_WRITE => self.compare_and_write(c, data),
            SYNC_CACHE_10 | SYNC_CACHE_16 => self.sync_cache(c),
            WRITE_SAME_10 | WRITE_SAME_16 => self.write_same(c, data),
            UNMAP => self.unmap(c, data),
            MODE_SENSE_6 | MODE_SENSE_10 => self.mode_sense(c),
            MODE_SELECT_6 | MODE_SELECT_10 => self.mode_select(nexus, c, data),
            READ_CAPACITY_10 => self.read_capacity_10(c),
            SERVICE_ACTION_IN_16 => match c.service_action() {
                SA_READ_CAPACITY_16 => self.read_capacity_16(c),
                SA_GET_LBA_STATUS => self.get_lba_status(c),
                _ => Err(sense::INVALID_FIELD_IN_CDB.in_cdb(1).into()),
            },
            REPORT_LUNS => match set {
                Some(s) => super::control::report_luns(c, &s.ids()),
                None => super::control::report_luns(c, &[self.config.id]),
            },
            MAINTENANCE_IN => match c.service_action() {
                SA_REPORT_OPCODES => self.report_opcodes(c),
                SA_REPORT_TPGS => self.report_target_port_groups(nexus, c),
                _ => Err(sense::INVALID_FIELD_IN_CDB.in_cdb(1).into()),
            },
            START_STOP_UNIT => self.start_stop(c),
            PREVENT_ALLOW => self.prevent_allow(nexus, c),
            RESERVE_6 => self.reserve6(nexus, c),
            RELEASE_6 => self.release6(nexus, c),
            PR_IN => self.pr_in(c),
            PR_OUT => self.pr_out(nexus, c, data),
            EXTENDED_COPY => {
                let scope = match set {
                    Some(s) => CopyScope::Set(s),
                    None => CopyScope::Alone(self),
                };
                self.extended_copy(nexus, c, data, scope)
            }
            RECEIVE_COPY_RESULTS => self.receive_copy_results(nexus, c),
            _ => Err(sense::INVALID_OPCODE.into()),
        }
    }
}

/// Commands that touch the medium and therefore fail while it is ejected.
fn is_media_access(op: u8) -> bool {
    use cdb::*;
    matches!(
        op,
        TEST_UNIT_READY
            | READ_CAPACITY_10
            | SERVICE_ACTION_IN_16
            | PREFETCH_10
            | PREFETCH_16
            | ORWRITE_16
            | READ_DEFECT_DATA_10
            | READ_DEFECT_DATA_12
            | READ_6
            | READ_10
            | READ_12
            | READ_16
            | WRITE_6
            | WRITE_10
            | WRITE_12
            | WRITE_16
            | WRITE_ATOMIC_16
            | WRITE_VERIFY_10
            | WRITE_VERIFY_12
            | WRITE_VERIFY_16
            | VERIFY_10
            | VERIFY_12
            | VERIFY_16
            | COMPARE_AND_WRITE
            | SYNC_CACHE_10
            | SYNC_CACHE_16
            | WRITE_SAME_10
            | WRITE_SAME_16
            | UNMAP
            | EXTENDED_COPY
    )
}

/// The LUNs of one target, by LUN number.
#[derive(Debug, Default, Clone)]
pub struct LunSet {
    luns: BTreeMap<u64, Arc<Lun>>,
}

impl LunSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `lun` under its configured id, returning the one it replaces.
    pub fn insert(&mut self, lun: Arc<Lun>) -> Option<Arc<Lun>> {
        self.luns.insert(lun.config.id, lun)
    }

    /// The LUN with number `id`.
    pub fn get(&self, id: u64) -> Option<&Arc<Lun>> {
        self.luns.get(&id)
    }

    /// All LUNs, by ascending number.
    pub(crate) fn luns(&self) -> impl Iterator<Item = &Arc<Lun>> {
        self.luns.values()
    }

    /// All LUN numbers, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.luns.keys().copied().collect()
    }

    /// Data-Out / Data-In prediction for `cdb` (see [`Lun::transfer`]); the same for LUNs
    /// that do not exist, whose commands fail without data.
    pub fn transfer(&self, lun: u64, cdb: &[u8]) -> Transfer {
        match self.luns.get(&lun) {
            Some(l) => l.transfer(cdb),
            None => {
                let c = Cdb::new(cdb);
                match c.opcode() {
                    cdb::REPORT_LUNS | cdb::INQUIRY | cdb::REQUEST_SENSE => cdb::transfer_for(&c),
                    _ => Transfer::default(),
                }
            }
        }
    }

    /// Executes `cdb` from `nexus` on LUN `lun`. REPORT LUNS lists every LUN of the set, and
    /// EXTENDED COPY can copy between any LUNs of the set; a LUN that does not exist answers
    /// INQUIRY with peripheral qualifier 011b and everything else with LOGICAL UNIT NOT
    /// SUPPORTED.
    pub fn execute(&self, nexus: &ItNexus, lun: u64, cdb: &[u8], data_out: &[u8]) -> ScsiResult {
        if let Some(l) = self.luns.get(&lun) {
            return l.execute_in(nexus, cdb, data_out, Some(self));
        }
        let c = Cdb::new(cdb);
        match c.opcode() {
            cdb::REPORT_LUNS if !cdb.is_empty() => {
                super::control::report_luns(&c, &self.ids()).into()
            }
            cdb::INQUIRY if !cdb.is_empty() => super::inquiry::inquiry_no_lun(&c).into(),
            cdb::REQUEST_SENSE if !cdb.is_empty() => {
                let alloc = usize::from(c.b(4));
                let data = sense::LUN_NOT_SUPPORTED.to_fixed().to_vec();
                ScsiResult::good(super::truncate(data, alloc))
            }
            _ => ScsiResult::check(sense::LUN_NOT_SUPPORTED),
        }
    }

    /// LOGICAL UNIT RESET of `lun` requested by `issuer` (see [`Lun::reset`]); returns
    /// `false` when the LUN does not exist.
    pub fn reset(&self, lun: u64, issuer: Option<&ItNexus>) -> bool {
        self.luns.get(&lun).map(|l| l.reset(issuer)).is_some()
    }

    /// TARGET WARM/COLD RESET requested by `issuer`: resets every LUN.
    pub fn reset_all(&self, issuer: Option<&ItNexus>) {
        self.luns.values().for_each(|l| l.reset(issuer));
    }

    /// Tells every LUN that `nexus` is gone.
    pub fn nexus_lost(&self, nexus: &ItNexus) {
        self.luns.values().for_each(|l| l.nexus_lost(nexus));
    }

    /// Encodes a LUN number as the 8-byte LUN field (SAM-5 4.7: peripheral addressing below
    /// 256, flat space addressing up to 16383).
    pub fn encode_lun(id: u64) -> [u8; 8] {
        let mut f = [0u8; 8];
        if id < 256 {
            f[1] = id as u8;
        } else {
            f[0] = 0x40 | ((id >> 8) as u8 & 0x3F);
            f[1] = id as u8;
        }
        f
    }

    /// Decodes the 8-byte LUN field of a SCSI Command PDU; `None` for addressing methods
    /// other than single-level peripheral or flat space.
    pub fn decode_lun(field: [u8; 8]) -> Option<u64> {
        if field[2..].iter().any(|&b| b != 0) {
            return None;
        }
        match field[0] >> 6 {
            0b00 if field[0] == 0 => Some(u64::from(field[1])),
            0b01 => Some((u64::from(field[0] & 0x3F) << 8) | u64::from(field[1])),
            _ => None,
        }
    }
}
