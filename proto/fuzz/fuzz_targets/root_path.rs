//! RFC 4173 root-path parsing: never panics, and emit(parse(s)) parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxeroot_proto::root_path::RootPath;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(r) = RootPath::parse(s) else { return };
    let emitted = r.emit().expect("a parsed root path emits");
    assert_eq!(RootPath::parse(&emitted).expect("emitted root path parses"), r);
});
