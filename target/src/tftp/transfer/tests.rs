//! Scripted, time-stepped exchanges with the read-transfer state machine.

use super::*;

const T: Duration = Duration::from_secs(1);

fn params(size: u64, blksize: u16, window: u16, oack: bool) -> Params {
    Params {
        size,
        blksize,
        window,
        timeout: T,
        retries: 3,
        oack,
    }
}

/// Everything the machine wants to send now.
fn drain(t: &mut ReadTransfer, now: Instant) -> Vec<Transmit> {
    std::iter::from_fn(|| t.poll_transmit(now)).collect()
}

/// The wire block numbers of the DATA packets in `out`.
fn blocks(out: &[Transmit]) -> Vec<u16> {
    out.iter()
        .map(|t| match t {
            Transmit::Data { block, .. } => *block,
            other => panic!("not data: {other:?}"),
        })
        .collect()
}

fn ack(t: &mut ReadTransfer, block: u16) {
    t.handle(&Packet::Ack { block });
}

#[test]
fn lock_step_small_file_without_options() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(1000, 512, 1, false));
    assert_eq!(t.blocks(), 2);
    assert_eq!(
        drain(&mut t, now),
        vec![Transmit::Data {
            block: 1,
            offset: 0,
            len: 512
        }]
    );
    assert_eq!(t.poll_at(), Some(now + T));
    ack(&mut t, 1);
    assert_eq!(
        drain(&mut t, now),
        vec![Transmit::Data {
            block: 2,
            offset: 512,
            len: 488
        }]
    );
    assert_eq!(t.outcome(), None);
    ack(&mut t, 2);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
    assert!(drain(&mut t, now).is_empty());
    assert_eq!(t.poll_at(), None);
}

#[test]
fn size_multiple_of_blksize_ends_with_an_empty_block() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(1024, 512, 1, false));
    assert_eq!(t.blocks(), 3);
    drain(&mut t, now);
    ack(&mut t, 1);
    drain(&mut t, now);
    ack(&mut t, 2);
    assert_eq!(
        drain(&mut t, now),
        vec![Transmit::Data {
            block: 3,
            offset: 1024,
            len: 0
        }]
    );
    ack(&mut t, 3);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn empty_file_is_one_empty_block() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(0, 512, 4, false));
    assert_eq!(
        drain(&mut t, now),
        vec![Transmit::Data {
            block: 1,
            offset: 0,
            len: 0
        }]
    );
    ack(&mut t, 1);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn oack_then_ack_zero_then_data() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(100, 512, 1, true));
    assert_eq!(drain(&mut t, now), vec![Transmit::Oack]);
    // An ACK for a data block before ACK 0 is ignored.
    ack(&mut t, 1);
    assert!(drain(&mut t, now).is_empty());
    // The OACK is resent on timeout.
    assert_eq!(drain(&mut t, now + T), vec![Transmit::Oack]);
    ack(&mut t, 0);
    assert_eq!(blocks(&drain(&mut t, now + T)), vec![1]);
    ack(&mut t, 1);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn client_error_after_oack_ends_quietly() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(100, 512, 1, true));
    drain(&mut t, now);
    t.handle(&Packet::Error {
        code: ErrorCode::OPTION_REFUSED,
        message: "no".into(),
    });
    assert_eq!(
        t.outcome(),
        Some(&Outcome::ClientError {
            code: ErrorCode::OPTION_REFUSED,
            message: "no".into()
        })
    );
    assert!(drain(&mut t, now).is_empty());
}

#[test]
fn window_is_sent_at_once_and_moved_by_a_cumulative_ack() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(512 * 10, 512, 4, false));
    assert_eq!(t.blocks(), 11);
    assert_eq!(blocks(&drain(&mut t, now)), vec![1, 2, 3, 4]);
    // ACK of the window's end: the next full window.
    ack(&mut t, 4);
    assert_eq!(blocks(&drain(&mut t, now)), vec![5, 6, 7, 8]);
    // ACK in the middle (the client saw a gap after 6): resend from 7.
    ack(&mut t, 6);
    assert_eq!(blocks(&drain(&mut t, now)), vec![7, 8, 9, 10]);
    ack(&mut t, 10);
    assert_eq!(blocks(&drain(&mut t, now)), vec![11]);
    ack(&mut t, 11);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn duplicate_and_stale_acks_send_nothing() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(512 * 10, 512, 4, false));
    drain(&mut t, now);
    ack(&mut t, 4);
    assert_eq!(blocks(&drain(&mut t, now)), vec![5, 6, 7, 8]);
    // The same ACK again (delayed duplicate): no Sorcerer's Apprentice resend.
    ack(&mut t, 4);
    assert!(drain(&mut t, now).is_empty());
    ack(&mut t, 2);
    assert!(drain(&mut t, now).is_empty());
    // An ACK of a block not sent yet is ignored too.
    ack(&mut t, 9);
    assert!(drain(&mut t, now).is_empty());
    assert_eq!(t.stats().sent, 8);
}

#[test]
fn lock_step_duplicate_ack_is_not_answered() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(5000, 512, 1, false));
    drain(&mut t, now);
    ack(&mut t, 1);
    assert_eq!(blocks(&drain(&mut t, now)), vec![2]);
    ack(&mut t, 1);
    assert!(drain(&mut t, now).is_empty());
    ack(&mut t, 2);
    assert_eq!(blocks(&drain(&mut t, now)), vec![3]);
}

#[test]
fn timeout_resends_the_window_from_the_first_unacknowledged_block() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(512 * 10, 512, 4, false));
    drain(&mut t, now);
    ack(&mut t, 2);
    assert_eq!(blocks(&drain(&mut t, now)), vec![3, 4, 5, 6]);
    assert!(drain(&mut t, now + T / 2).is_empty());
    assert_eq!(blocks(&drain(&mut t, now + T)), vec![3, 4, 5, 6]);
    assert_eq!(t.stats().resent, 4);
    assert_eq!(t.stats().timeouts, 1);
    ack(&mut t, 6);
    assert_eq!(blocks(&drain(&mut t, now + T)), vec![7, 8, 9, 10]);
}

#[test]
fn stalled_client_is_abandoned_after_retries() {
    let mut now = Instant::now();
    let mut t = ReadTransfer::new(params(100_000, 512, 1, true));
    assert_eq!(drain(&mut t, now), vec![Transmit::Oack]);
    for _ in 0..3 {
        now = t.poll_at().unwrap();
        assert_eq!(drain(&mut t, now), vec![Transmit::Oack]);
    }
    now = t.poll_at().unwrap();
    assert!(drain(&mut t, now).is_empty());
    assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
    assert_eq!(t.poll_at(), None);
}

#[test]
fn progress_resets_the_retry_count() {
    let mut now = Instant::now();
    let mut t = ReadTransfer::new(params(512 * 100, 512, 1, false));
    drain(&mut t, now);
    for block in 1..=20u16 {
        for _ in 0..3 {
            now = t.poll_at().unwrap();
            assert_eq!(blocks(&drain(&mut t, now)), vec![block]);
        }
        ack(&mut t, block);
        drain(&mut t, now);
    }
    assert_eq!(t.outcome(), None);
}

#[test]
fn block_numbers_roll_over_past_65535() {
    let now = Instant::now();
    let size = 512 * 70_000 + 3;
    let mut t = ReadTransfer::new(params(size, 512, 16, false));
    let mut expected: u64 = 1;
    let mut last = 0;
    while t.outcome().is_none() {
        let out = drain(&mut t, now);
        assert!(!out.is_empty());
        for tx in &out {
            let Transmit::Data { block, offset, len } = tx else {
                panic!()
            };
            assert_eq!(*block, expected as u16);
            assert_eq!(*offset, (expected - 1) * 512);
            assert_eq!(*len as u64, (size - offset).min(512));
            last = *block;
            expected += 1;
        }
        ack(&mut t, last);
    }
    assert_eq!(expected - 1, 70_001);
    assert_eq!(t.stats().sent, 70_001);
    // 65535 is followed by 0, not 1.
    assert_eq!((70_001u64 as u16), last);
}

#[test]
fn ack_across_the_wrap_inside_a_window() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(512 * 70_000, 512, 8, false));
    // Walk to the window starting at 65533.
    loop {
        let out = blocks(&drain(&mut t, now));
        let last = *out.last().unwrap();
        if out.contains(&0) {
            assert_eq!(
                out,
                vec![65529, 65530, 65531, 65532, 65533, 65534, 65535, 0]
            );
            break;
        }
        ack(&mut t, last);
    }
    // A stale ACK from before the wrap is ignored; an ACK of block 65535 moves the window.
    ack(&mut t, 65528);
    assert!(drain(&mut t, now).is_empty());
    ack(&mut t, 65535);
    assert_eq!(blocks(&drain(&mut t, now)), vec![0, 1, 2, 3, 4, 5, 6, 7]);
    ack(&mut t, 3);
    assert_eq!(blocks(&drain(&mut t, now)), vec![4, 5, 6, 7, 8, 9, 10, 11]);
}

#[test]
fn illegal_packets_end_the_transfer_with_error_4() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(params(5000, 512, 1, false));
    drain(&mut t, now);
    t.handle(&Packet::Data {
        block: 1,
        data: b"x",
    });
    assert_eq!(
        drain(&mut t, now),
        vec![Transmit::Error {
            code: ErrorCode::ILLEGAL_OPERATION,
            message: "illegal operation".into()
        }]
    );
    assert!(matches!(t.outcome(), Some(Outcome::Illegal(_))));
}
