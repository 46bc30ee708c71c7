//! The TFTP wire codec, option negotiation and read-transfer state machine of pxeroot-target.
//!
//! Input: one selector byte.
//! - even: the rest is one datagram. It must parse or fail without a panic; a parsed packet
//!   must survive emit -> parse unchanged, and a parsed request's options must negotiate
//!   within the limits.
//! - odd: the rest drives a transfer. 8 bytes of parameters (size u32, blksize u16, window u8,
//!   flags u8: bit 0 OACK first), then events of 3 bytes `[kind][u16 BE]`: kind % 4 == 0 ACK of
//!   that block, 1 ACK of the last DATA block sent minus the value (stale and duplicate ACKs),
//!   2 time passes by value milliseconds, 3 another packet (DATA, ERROR, RRQ) chosen by the
//!   value. Every DATA the machine asks for must lie inside the file, be at most blksize long,
//!   start on a block boundary and carry the low 16 bits of its block index, and no burst
//!   (one event's answer) holds more than `window` blocks.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pxeroot_target::tftp::options::{negotiate, Limits};
use pxeroot_target::tftp::packet::{ErrorCode, Packet};
use pxeroot_target::tftp::transfer::{Params, ReadTransfer, Transmit};

fn datagram(data: &[u8]) {
    let Ok(p) = Packet::parse(data) else { return };
    let wire = p.to_vec();
    assert_eq!(Packet::parse(&wire).ok(), Some(p.clone()), "emit/parse round trip");
    if let Packet::Rrq(r) | Packet::Wrq(r) = &p {
        let limits = Limits {
            max_blksize: 1468,
            max_window: 16,
        };
        let n = negotiate(&r.options, limits, 12345);
        assert!(n.blksize == 512 || (8..=1468).contains(&n.blksize));
        assert!((1..=16).contains(&n.window));
    }
}

fn transfer(data: &[u8]) {
    let Some((head, events)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]])) % (1 << 22);
    let blksize = u16::from_be_bytes([head[4], head[5]]).max(8);
    let window = u16::from(head[6]).max(1);
    let params = Params {
        size,
        blksize,
        window,
        timeout: Duration::from_millis(100),
        retries: 3,
        oack: head[7] & 1 == 1,
    };
    let mut t = ReadTransfer::new(params);
    let mut now = Instant::now();
    let mut last_block: u16 = 0;
    let check = |t: &mut ReadTransfer, now: Instant, last: &mut u16| {
        let mut in_burst = 0u64;
        while let Some(tx) = t.poll_transmit(now) {
            if let Transmit::Data { block, offset, len } = tx {
                assert!(len <= usize::from(blksize));
                assert!(offset + len as u64 <= size);
                assert_eq!(offset % u64::from(blksize), 0);
                assert_eq!(block, (offset / u64::from(blksize) + 1) as u16);
                *last = block;
                in_burst += 1;
                assert!(in_burst <= u64::from(window), "more than a window at once");
            }
        }
    };
    check(&mut t, now, &mut last_block);
    for ev in events.chunks_exact(3) {
        let v = u16::from_be_bytes([ev[1], ev[2]]);
        let packet = match ev[0] % 4 {
            0 => Some(Packet::Ack { block: v }),
            1 => Some(Packet::Ack {
                block: last_block.wrapping_sub(v % 64),
            }),
            2 => {
                now += Duration::from_millis(u64::from(v % 512));
                None
            }
            _ => Some(match v % 3 {
                0 => Packet::Data {
                    block: v,
                    data: &[1, 2, 3],
                },
                1 => Packet::Error {
                    code: ErrorCode(v),
                    message: "x".into(),
                },
                _ => Packet::Ack { block: 0 },
            }),
        };
        if let Some(p) = packet {
            t.handle(&p);
        }
        check(&mut t, now, &mut last_block);
        if t.outcome().is_some() {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((sel, rest)) if sel % 2 == 0 => datagram(rest),
        Some((_, rest)) => transfer(rest),
        None => {}
    }
});
