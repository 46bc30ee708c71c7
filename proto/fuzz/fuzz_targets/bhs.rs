//! Framing and PDU parsing of arbitrary bytes: never panics, and whatever parses re-emits to
//! bytes that parse to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxeroot_proto::digest::DigestKind;
use pxeroot_proto::frame::{encode_pdu, Frame, FrameLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, buf)) = data.split_first() else { return };
    let kind = |b: bool| if b { DigestKind::Crc32c } else { DigestKind::None };
    let limits = FrameLimits {
        header_digest: kind(flags & 1 != 0),
        data_digest: kind(flags & 2 != 0),
        max_data_segment_len: 1 << 16,
    };
    let _ = pxeroot_proto::frame::pdu_len(buf, &limits);
    let Ok(frame) = Frame::split(buf, &limits) else { return };
    let Ok(pdu) = frame.parse() else { return };
    let mut out = Vec::new();
    encode_pdu(&pdu, &limits, &mut out).expect("a parsed PDU re-encodes");
    let again = Frame::split(&out, &limits).expect("re-encoded frame splits");
    assert_eq!(again.parse().expect("re-encoded PDU parses"), pdu);
});
