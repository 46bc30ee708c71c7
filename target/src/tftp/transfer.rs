//! The read-transfer state machine (RFC 1350 §2, RFC 2347 OACK handshake, RFC 7440 windows).
//!
//! Sans-IO, in the smoltcp shape: [`ReadTransfer::handle`] takes a packet from the client,
//! [`ReadTransfer::poll_transmit`] says what to send next (call it until `None`: a whole window
//! comes out at once), [`ReadTransfer::poll_at`] says when to call again if nothing arrives.
//! The clock is passed in, so tests step time by hand.
//!
//! Blocks are counted with a 64-bit index internally (block 1 is the file's first); the wire
//! number is its low 16 bits, so numbering wraps from 65535 to 0 as tftp-hpa, curl and atftp
//! expect. The last block is shorter than blksize, and empty when the size is a multiple of it.
//!
//! ACKs: an ACK of any sent block at or after the first unacknowledged one is cumulative and
//! moves the window to start right after it (RFC 7440: the client acknowledges the last block
//! it received in order, so the blocks after it are resent). A duplicate or stale ACK changes
//! nothing and sends nothing, which avoids the Sorcerer's Apprentice syndrome (RFC 1123
//! §4.2.3.1); lost packets are recovered only by the timeout, which resends the window from the
//! first unacknowledged block. After `retries` timeouts in a row the transfer is abandoned.

use std::time::{Duration, Instant};

use tracing::debug;

use super::packet::{ErrorCode, Packet};

/// Parameters of one transfer, after negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// File size in bytes.
    pub size: u64,
    /// Bytes per block.
    pub blksize: u16,
    /// Blocks per window (1: lock-step).
    pub window: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Timeouts in a row before giving up.
    pub retries: u32,
    /// Whether an OACK opens the transfer (then ACK 0 must come before DATA 1).
    pub oack: bool,
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// The OACK (its options are the caller's, from negotiation).
    Oack,
    /// A DATA packet: `len` bytes of the file at `offset`, numbered `block`.
    Data {
        /// Wire block number.
        block: u16,
        /// File offset of the payload.
        offset: u64,
        /// Payload length (0..=blksize).
        len: usize,
    },
    /// An ERROR packet (the transfer is over once it is sent).
    Error {
        /// The code.
        code: ErrorCode,
        /// The message.
        message: String,
    },
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last block was acknowledged.
    Completed,
    /// `retries` timeouts in a row.
    TimedOut,
    /// The client sent an ERROR.
    ClientError {
        /// The code.
        code: ErrorCode,
        /// The message.
        message: String,
    },
    /// The client sent something no read transfer accepts.
    Illegal(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// First unacknowledged block.
    base: u64,
    /// Next block to send.
    next: u64,
    /// Highest block sent so far.
    highest_sent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// OACK sent (or due), waiting for ACK 0.
    AwaitOackAck { due: bool },
    /// Sending data.
    Sending(Window),
    /// Over.
    Done(Outcome),
}

/// Counters for the log line at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// DATA packets sent, resends included.
    pub sent: u64,
    /// DATA or OACK packets sent again after a timeout.
    pub resent: u64,
    /// Timeouts.
    pub timeouts: u64,
}

/// One read transfer.
#[derive(Debug)]
pub struct ReadTransfer {
    params: Params,
    last_block: u64,
    state: State,
    deadline: Option<Instant>,
    retries: u32,
    error: Option<Transmit>,
    resending_until: u64,
    stats: Stats,
}

impl ReadTransfer {
    /// A transfer that starts with the OACK (when `params.oack`) or DATA 1.
    pub fn new(params: Params) -> ReadTransfer {
        let blksize = u64::from(params.blksize.max(1));
        let params = Params {
            window: params.window.max(1),
            ..params
        };
        ReadTransfer {
            params,
            last_block: params.size / blksize + 1,
            state: if params.oack {
                State::AwaitOackAck { due: true }
            } else {
                State::Sending(Window::start())
            },
            deadline: None,
            retries: 0,
            error: None,
            resending_until: 0,
            stats: Stats::default(),
        }
    }

    /// The number of blocks in the file (the last may be empty).
    pub fn blocks(&self) -> u64 {
        self.last_block
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How the transfer ended, once it has (and any ERROR has been polled out).
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Done(o) if self.error.is_none() => Some(o),
            _ => None,
        }
    }

    /// When to call [`Self::poll_transmit`] again if no packet arrives.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.state {
            State::Done(_) => None,
            _ => self.deadline,
        }
    }

    /// Take a packet from the client (its own TID; the caller filters others).
    pub fn handle(&mut self, packet: &Packet<'_>) {
        match (&mut self.state, packet) {
            (State::Done(_), _) => debug!(?packet, "packet after the end of the transfer"),
            (_, Packet::Error { code, message }) => {
                self.state = State::Done(Outcome::ClientError {
                    code: *code,
                    message: message.clone(),
                });
            }
            (State::AwaitOackAck { .. }, Packet::Ack { block: 0 }) => {
                self.state = State::Sending(Window::start());
                self.progress();
            }
            (State::AwaitOackAck { .. }, Packet::Ack { block }) => {
                debug!(block, "ACK before the OACK was acknowledged; ignored");
            }
            (State::Sending(w), Packet::Ack { block }) => {
                let anchor = w.base - 1;
                // The low 16 bits of `anchor` are the last acknowledged wire number; the
                // distance from it picks the one block in [anchor, anchor + 65535] that has this
                // wire number.
                let k = anchor + u64::from(block.wrapping_sub(anchor as u16));
                if k < w.base || k > w.highest_sent {
                    debug!(block, base = w.base, "duplicate or stale ACK; ignored");
                    return;
                }
                if k == self.last_block {
                    self.state = State::Done(Outcome::Completed);
                    self.deadline = None;
                    return;
                }
                w.base = k + 1;
                w.next = k + 1;
                self.progress();
            }
            (_, other) => {
                let what = match other {
                    Packet::Rrq(_) => "RRQ on a transfer",
                    Packet::Wrq(_) => "WRQ on a transfer",
                    Packet::Data { .. } => "DATA sent to a read transfer",
                    _ => "OACK sent to a server",
                };
                self.error = Some(Transmit::Error {
                    code: ErrorCode::ILLEGAL_OPERATION,
                    message: "illegal operation".into(),
                });
                self.state = State::Done(Outcome::Illegal(what));
            }
        }
    }

    /// The acknowledged data moved on: the retry count and the timer start over.
    fn progress(&mut self) {
        self.retries = 0;
        self.deadline = None;
    }

    /// The next packet to send now, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(e) = self.error.take() {
            return Some(e);
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.on_timeout();
        }
        let timeout = self.params.timeout;
        match &mut self.state {
            State::Done(_) => None,
            State::AwaitOackAck { due } => {
                if !*due {
                    return None;
                }
                *due = false;
                self.deadline = Some(now + timeout);
                Some(Transmit::Oack)
            }
            State::Sending(w) => {
                let window_end = w.base + u64::from(self.params.window) - 1;
                if w.next > window_end || w.next > self.last_block {
                    return None;
                }
                let k = w.next;
                w.next += 1;
                w.highest_sent = w.highest_sent.max(k);
                self.deadline = Some(now + timeout);
                self.stats.sent += 1;
                if k <= self.resending_until {
                    self.stats.resent += 1;
                }
                let blksize = u64::from(self.params.blksize);
                let offset = (k - 1) * blksize;
                let len = self.params.size.saturating_sub(offset).min(blksize);
                Some(Transmit::Data {
                    block: k as u16,
                    offset,
                    len: usize::try_from(len).unwrap_or(0),
                })
            }
        }
    }

    fn on_timeout(&mut self) {
        self.deadline = None;
        self.stats.timeouts += 1;
        self.retries += 1;
        if self.retries > self.params.retries {
            self.state = State::Done(Outcome::TimedOut);
            return;
        }
        match &mut self.state {
            State::AwaitOackAck { due } => {
                *due = true;
                self.stats.resent += 1;
            }
            State::Sending(w) => {
                self.resending_until = w.highest_sent;
                w.next = w.base;
            }
            State::Done(_) => {}
        }
    }
}

impl Window {
    fn start() -> Window {
        Window {
            base: 1,
            next: 1,
            highest_sent: 0,
        }
    }
}

#[cfg(test)]
mod tests;
