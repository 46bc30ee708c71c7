use super::*;
use proptest::prelude::*;

/// Deterministic "randomness": a counter.
struct Counter(u8);

impl Random for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}

/// Always returns the same bytes.
struct Stuck;

impl Random for Stuck {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(7);
    }
}

fn hexv(s: &str) -> Vec<u8> {
    decode_binary(&format!("0x{s}")).unwrap()
}

#[test]
fn response_vectors() {
    // Independent reference values computed with coreutils/openssl:
    // printf '\x01secret\x02\x03' | md5sum / sha1sum / sha256sum / openssl dgst -sha3-256
    let s = Secret::new(*b"secret");
    let c = [2u8, 3];
    assert_eq!(ChapAlgorithm::Md5.response(1, &s, &c), hexv(MD5_VEC), "MD5");
    assert_eq!(
        ChapAlgorithm::Sha1.response(1, &s, &c),
        hexv(SHA1_VEC),
        "SHA1"
    );
    assert_eq!(
        ChapAlgorithm::Sha256.response(1, &s, &c),
        hexv(SHA256_VEC),
        "SHA256"
    );
    assert_eq!(
        ChapAlgorithm::Sha3_256.response(1, &s, &c),
        hexv(SHA3_VEC),
        "SHA3"
    );
}

const MD5_VEC: &str = "f506c24f35d1c70e450edb8fdf933478";
const SHA1_VEC: &str = "c89c16e4dae017f9f96fb7e0b771ae92805b9b3f";
const SHA256_VEC: &str = "0139bffdf152606a2cbffc12059829afee1ca9ddf6a682afd2c3d9c5572c387b";
const SHA3_VEC: &str = "f8d632f4120d63e6e132e32a335afbe79b4e84798b132a7a241688ff14c6fd5f";

#[test]
fn iana_numbering() {
    assert_eq!(ChapAlgorithm::from_code(7), Some(ChapAlgorithm::Sha256));
    assert_eq!(ChapAlgorithm::from_code(8), Some(ChapAlgorithm::Sha3_256));
    assert_eq!(ChapAlgorithm::from_code(6), Some(ChapAlgorithm::Sha1));
    assert_eq!(ChapAlgorithm::from_code(5), Some(ChapAlgorithm::Md5));
    assert_eq!(ChapAlgorithm::from_code(9), None);
    for a in ChapAlgorithm::ALL {
        assert_eq!(
            a.response(0, &Secret::new(*b"x"), b"y").len(),
            a.digest_len()
        );
    }
}

#[test]
fn encodings() {
    assert_eq!(encode_hex(&[0x00, 0xab, 0x10]), "0x00ab10");
    assert_eq!(decode_binary("0x00AB10"), Some(vec![0x00, 0xab, 0x10]));
    assert_eq!(decode_binary("0xabc"), Some(vec![0x0a, 0xbc]));
    assert_eq!(decode_binary("0x"), None);
    assert_eq!(decode_binary("0xzz"), None);
    assert_eq!(decode_binary("abc"), None);
    assert_eq!(decode_binary(""), None);
    // RFC 4648 §10 test vectors.
    for (plain, enc) in [
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(encode_base64(plain.as_bytes()), format!("0b{enc}"));
        assert_eq!(
            decode_binary(&format!("0b{enc}")),
            Some(plain.as_bytes().to_vec())
        );
    }
    assert_eq!(decode_binary("0bZg="), None);
    assert_eq!(decode_binary("0b!!!!"), None);
}

#[test]
fn secret_debug_is_redacted() {
    let c = Credentials::new("user", *b"hunter2-hunter2");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn short_secret_warns() {
    assert_eq!(
        Secret::new(*b"short").warning(),
        Some(ChapWarning::ShortSecret { len: 5 })
    );
    assert_eq!(Secret::new(*b"twelve-bytes").warning(), None);
    let i = ChapInitiator::new(
        &[ChapAlgorithm::Md5],
        Credentials::new("u", *b"short"),
        None,
    )
    .unwrap();
    assert_eq!(i.warnings().len(), 1);
    assert!(i.warnings()[0].to_string().contains("12"));
}

#[test]
fn same_secret_both_ways_refused() {
    let own = Credentials::new("i", *b"same-secret-123");
    let mutual = Credentials::new("t", *b"same-secret-123");
    assert_eq!(
        ChapInitiator::new(&[ChapAlgorithm::Md5], own.clone(), Some(mutual.clone())).unwrap_err(),
        ChapError::SameSecretBothWays
    );
    assert_eq!(
        ChapTarget::new(&[ChapAlgorithm::Md5], own, Some(mutual)).unwrap_err(),
        ChapError::SameSecretBothWays
    );
}

fn creds() -> (Credentials, Credentials) {
    (
        Credentials::new("initiator", *b"initiator-secret"),
        Credentials::new("target", *b"target-secret-1"),
    )
}

fn run(
    i_algs: &[ChapAlgorithm],
    t_algs: &[ChapAlgorithm],
    i_creds: Credentials,
    t_expect: Credentials,
    i_mutual: Option<Credentials>,
    t_mutual: Option<Credentials>,
) -> Result<(), ChapError> {
    let mut rng = Counter(0);
    let mut i = ChapInitiator::new(i_algs, i_creds, i_mutual.clone())?;
    let mut t = ChapTarget::new(t_algs, t_expect, t_mutual)?;
    let a = i.start();
    let ch = t.handle(&a, &mut rng)?;
    let resp = i.handle(&ch, &mut rng)?;
    let back = t.handle(&resp, &mut rng)?;
    assert!(t.is_done());
    if i_mutual.is_some() {
        assert!(i.awaiting_mutual());
        let last = i.handle(&back, &mut rng)?;
        assert!(last.is_empty());
    } else {
        assert!(back.is_empty());
    }
    assert!(i.is_done());
    Ok(())
}

#[test]
fn one_way_every_algorithm() {
    for alg in ChapAlgorithm::ALL {
        let (ic, _) = creds();
        run(&[alg], &ChapAlgorithm::ALL, ic.clone(), ic, None, None).unwrap();
    }
}

#[test]
fn mutual_ok() {
    let (ic, tc) = creds();
    run(
        &[ChapAlgorithm::Sha256],
        &[ChapAlgorithm::Sha256],
        ic.clone(),
        ic,
        Some(tc.clone()),
        Some(tc),
    )
    .unwrap();
}

#[test]
fn wrong_secret_or_user() {
    let (ic, tc) = creds();
    let wrong = Credentials::new("initiator", *b"not-the-secret!");
    let e = run(
        &[ChapAlgorithm::Md5],
        &[ChapAlgorithm::Md5],
        wrong,
        ic.clone(),
        None,
        None,
    );
    assert_eq!(e, Err(ChapError::BadResponse));
    assert!(ChapError::BadResponse.is_auth_failure());
    let other_user = Credentials::new("mallory", *b"initiator-secret");
    let e = run(
        &[ChapAlgorithm::Md5],
        &[ChapAlgorithm::Md5],
        other_user,
        ic.clone(),
        None,
        None,
    );
    assert_eq!(e, Err(ChapError::WrongUser));
    // The target proves a wrong mutual secret: the initiator refuses.
    let fake_target = Credentials::new("target", *b"impostor-secret");
    let e = run(
        &[ChapAlgorithm::Md5],
        &[ChapAlgorithm::Md5],
        ic.clone(),
        ic,
        Some(tc),
        Some(fake_target),
    );
    assert_eq!(e, Err(ChapError::BadResponse));
}

#[test]
fn no_common_algorithm() {
    let (ic, _) = creds();
    let e = run(
        &[ChapAlgorithm::Md5],
        &[ChapAlgorithm::Sha256],
        ic.clone(),
        ic,
        None,
        None,
    );
    assert!(matches!(e, Err(ChapError::NoCommonAlgorithm(_))));
}

#[test]
fn target_picks_first_offered_supported() {
    let (ic, _) = creds();
    let mut t = ChapTarget::new(&[ChapAlgorithm::Md5, ChapAlgorithm::Sha256], ic, None).unwrap();
    let mut offer = TextPairs::new();
    offer.push(Key::ChapA, "99,7,5");
    let out = t.handle(&offer, &mut Counter(0)).unwrap();
    assert_eq!(out.get(&Key::ChapA), Some("7"));
    assert_eq!(out.get(&Key::ChapC).map(str::len), Some(2 + 64));
}

#[test]
fn reflected_challenge_refused() {
    let (ic, tc) = creds();
    let mut t = ChapTarget::new(&[ChapAlgorithm::Md5], ic.clone(), Some(tc)).unwrap();
    let mut offer = TextPairs::new();
    offer.push(Key::ChapA, "5");
    let ch = t.handle(&offer, &mut Stuck).unwrap();
    let id = parse_id(ch.get(&Key::ChapI).unwrap()).unwrap();
    let c = decode_binary(ch.get(&Key::ChapC).unwrap()).unwrap();
    let mut resp = TextPairs::new();
    resp.push(Key::ChapN, "initiator");
    resp.push(
        Key::ChapR,
        encode_hex(&ChapAlgorithm::Md5.response(id, &ic.secret, &c)),
    );
    resp.push(Key::ChapI, "1");
    resp.push(Key::ChapC, encode_base64(&c)); // same challenge, other encoding
    assert_eq!(
        t.handle(&resp, &mut Stuck),
        Err(ChapError::ReflectedChallenge)
    );
}

#[test]
fn initiator_redraws_colliding_challenge() {
    // The target's challenge is all 7s; a stuck RNG would reflect it. Counter-based RNG for the
    // initiator must not produce an equal challenge.
    let (ic, tc) = creds();
    let mut i = ChapInitiator::new(&[ChapAlgorithm::Md5], ic, Some(tc)).unwrap();
    i.start();
    let mut ch = TextPairs::new();
    ch.push(Key::ChapA, "5");
    ch.push(Key::ChapI, "7");
    ch.push(Key::ChapC, encode_hex(&[0u8; 16]));
    let mut rng = Counter(0); // first draw: id 0, challenge 1..=16 != zeros
    let out = i.handle(&ch, &mut rng).unwrap();
    assert_ne!(out.get(&Key::ChapC), ch.get(&Key::ChapC));
}

#[test]
fn mutual_not_configured_on_target() {
    let (ic, tc) = creds();
    let e = run(
        &[ChapAlgorithm::Md5],
        &[ChapAlgorithm::Md5],
        ic.clone(),
        ic,
        Some(tc),
        None,
    );
    assert_eq!(e, Err(ChapError::MutualNotConfigured));
}

#[test]
fn bad_inputs() {
    let (ic, _) = creds();
    let mut i = ChapInitiator::new(&[ChapAlgorithm::Md5], ic, None).unwrap();
    i.start();
    let mut ch = TextPairs::new();
    ch.push(Key::ChapA, "7"); // not offered
    ch.push(Key::ChapI, "1");
    ch.push(Key::ChapC, "0x01");
    assert!(matches!(
        i.handle(&ch, &mut Counter(0)),
        Err(ChapError::UnexpectedAlgorithm(_))
    ));
    assert_eq!(parse_id("256"), Err(ChapError::BadIdentifier));
    assert_eq!(parse_id("0xff"), Ok(255));
    assert_eq!(
        parse_challenge(&encode_hex(&[0u8; 1025])),
        Err(ChapError::BadChallengeLen(1025))
    );
}

proptest! {
    #[test]
    fn decode_never_panics(s in "\\PC{0,40}") {
        let _ = decode_binary(&s);
    }

    #[test]
    fn encodings_round_trip(data in proptest::collection::vec(any::<u8>(), 1..64)) {
        prop_assert_eq!(decode_binary(&encode_hex(&data)), Some(data.clone()));
        prop_assert_eq!(decode_binary(&encode_base64(&data)), Some(data));
    }
}
