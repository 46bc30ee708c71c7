//! Text key=value parsing and negotiation of arbitrary data, in both roles.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxeroot_proto::negotiate::{LocalParams, Negotiator, Role};
use pxeroot_proto::text::TextPairs;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = TextPairs::parse(data) else { return };
    let bytes = pairs.to_bytes().expect("parsed pairs re-encode");
    assert_eq!(TextPairs::parse(&bytes).expect("re-encoded pairs parse"), pairs);
    for role in [Role::Initiator, Role::Target] {
        let mut n = Negotiator::new(role, LocalParams::default());
        n.offer(LocalParams::operational_keys(false));
        if let Ok(answers) = n.handle(&pairs) {
            let _ = answers.to_bytes();
        }
        let (s, _) = n.finish();
        assert!(s.first_burst_length <= s.max_burst_length);
    }
});
