use super::*;
use crate::{Cli, Command};

fn no_env(_: &str) -> Option<Vec<u8>> {
    None
}

fn args(extra: &[&str]) -> ProbeArgs {
    let mut argv = vec![
        "pxeroot-initiator",
        "probe",
        "--portal",
        "127.0.0.1",
        "--target",
        "iqn.2026-11.org.example:disk1",
    ];
    argv.extend(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Some(Command::Probe(a)) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn portals() {
    let p = |s: &str| parse_portal(s).map_err(|e| e.to_string());
    assert_eq!(p("10.0.0.2"), Ok("10.0.0.2:3260".parse().unwrap()));
    assert_eq!(p("10.0.0.2:3261"), Ok("10.0.0.2:3261".parse().unwrap()));
    assert_eq!(p("[fd00::2]:3262"), Ok("[fd00::2]:3262".parse().unwrap()));
    assert_eq!(p("[fd00::2]"), Ok("[fd00::2]:3260".parse().unwrap()));
    assert_eq!(p("fd00::2"), Ok("[fd00::2]:3260".parse().unwrap()));
    let e = parse_portal("server.example").unwrap_err();
    assert_eq!(e.exit_code(), exit::USAGE);
    assert!(e.to_string().contains("--portal \"server.example\""), "{e}");
}

#[test]
fn no_secret_flag_exists() {
    for flag in ["--secret", "--password", "--mutual-secret"] {
        let argv = [
            "pxeroot-initiator",
            "probe",
            "--portal",
            "127.0.0.1",
            "--target",
            "iqn.x:y",
            "--chap",
            "u",
            flag,
            "s3cret-value",
        ];
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert!(e.use_stderr(), "{flag}");
    }
}

#[test]
fn cli_defaults_and_limits() {
    let a = args(&[]);
    assert_eq!((a.lun, a.timeout, a.json), (0, 10, false));
    assert!(a.chap.is_none() && a.initiator.is_none());
    let a = args(&["--lun", "16383", "--timeout", "3", "--json"]);
    assert_eq!((a.lun, a.timeout, a.json), (16383, 3, true));
    for bad in [
        &["--lun", "16384"][..],
        &["--timeout", "0"],
        &["--mutual-user", "t"],
    ] {
        let mut argv = vec![
            "pxeroot-initiator",
            "probe",
            "--portal",
            "127.0.0.1",
            "--target",
            "iqn.x:y",
        ];
        argv.extend(bad);
        assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
    }
}

#[test]
fn secrets_from_files_and_env() {
    let dir = std::env::temp_dir().join(format!("pxeroot-probe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "from-the-file-1\r\n").unwrap();
    let path = file.to_str().unwrap();
    let a = args(&["--chap", "client", "--secret-file", path]);
    let env = |n: &str| (n == ENV_SECRET).then(|| b"from-the-env-22".to_vec());
    assert_eq!(
        auth_from_args(&a, &env).unwrap(),
        Auth::Chap {
            user: "client".into(),
            secret: Secret::new("from-the-file-1"),
        }
    );
    // Without a file, the environment.
    let a = args(&["--chap", "client"]);
    assert_eq!(
        auth_from_args(&a, &env).unwrap(),
        Auth::Chap {
            user: "client".into(),
            secret: Secret::new("from-the-env-22"),
        }
    );
    // Mutual: the target's secret from its own variable.
    let a = args(&["--chap", "client", "--mutual-user", "target"]);
    let both = |n: &str| match n {
        ENV_SECRET => Some(b"from-the-env-22".to_vec()),
        ENV_MUTUAL_SECRET => Some(b"target-env-333\n".to_vec()),
        _ => None,
    };
    assert_eq!(
        auth_from_args(&a, &both).unwrap(),
        Auth::MutualChap {
            user: "client".into(),
            secret: Secret::new("from-the-env-22"),
            target_user: "target".into(),
            target_secret: Secret::new("target-env-333"),
        }
    );
    let e = auth_from_args(&a, &env).unwrap_err();
    assert_eq!(e.exit_code(), exit::USAGE);
    assert!(e.to_string().contains(ENV_MUTUAL_SECRET), "{e}");
    // Missing, empty and unreadable secrets.
    let e = auth_from_args(&args(&["--chap", "client"]), &no_env).unwrap_err();
    assert_eq!(e.exit_code(), exit::USAGE);
    std::fs::write(&file, "\n").unwrap();
    let e = auth_from_args(&args(&["--chap", "c", "--secret-file", path]), &no_env).unwrap_err();
    assert_eq!(e.exit_code(), exit::BAD_CONFIG);
    assert!(e.to_string().contains("empty"), "{e}");
    let missing = dir.join("nope");
    let m = missing.to_str().unwrap();
    let e = auth_from_args(&args(&["--chap", "c", "--secret-file", m]), &no_env).unwrap_err();
    assert_eq!(e.exit_code(), exit::BAD_CONFIG);
    assert!(e.to_string().starts_with(m), "{e}");
    let e = auth_from_args(&args(&["--secret-file", path]), &no_env).unwrap_err();
    assert_eq!(e.exit_code(), exit::USAGE);
    assert_eq!(auth_from_args(&args(&[]), &env).unwrap(), Auth::None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cdbs() {
    let c = cdb::report_luns(4096);
    assert_eq!(c[..12], [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
    assert_eq!(
        cdb::inquiry(true, 0x83, 1024)[..6],
        [0x12, 1, 0x83, 4, 0, 0]
    );
    assert_eq!(cdb::inquiry(false, 0, 255)[..6], [0x12, 0, 0, 0, 255, 0]);
    let c = cdb::read_capacity16(32);
    assert_eq!(c, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
    assert_eq!(cdb::read_capacity10()[0], 0x25);
    assert_eq!(cdb::test_unit_ready(), [0; 16]);
}

#[test]
fn report_luns_data() {
    let mut d = vec![0, 0, 0, 24, 0, 0, 0, 0];
    d.extend([0, 0, 0, 0, 0, 0, 0, 0]); // 0
    d.extend([0, 1, 0, 0, 0, 0, 0, 0]); // 1, peripheral
    d.extend([0x41, 0x2c, 0, 0, 0, 0, 0, 0]); // 300, flat
    d.extend([0, 9, 0, 0, 0, 0, 0, 0]); // beyond the list length: ignored
    assert_eq!(cdb::parse_report_luns(&d), [0, 1, 300]);
    assert_eq!(cdb::report_luns_len(&d), 24);
    assert_eq!(cdb::report_luns_len(&[0, 0]), 0);
    assert_eq!(cdb::parse_report_luns(&[0, 0, 0, 8]), Vec::<u64>::new());
    assert_eq!(cdb::parse_report_luns(&[]), Vec::<u64>::new());
}

#[test]
fn inquiry_and_vpd_data() {
    let mut d = vec![0x00, 0, 6, 2, 31, 0, 0, 0];
    d.extend(b"PXEROOT VIRTUAL-DISK    0001");
    let i = cdb::parse_inquiry(&d).unwrap();
    assert_eq!((i.qualifier, i.device_type), (0, 0));
    assert_eq!(
        (i.vendor.as_str(), i.product.as_str()),
        ("PXEROOT", "VIRTUAL-DISK")
    );
    assert_eq!(i.revision, "0001");
    let absent = cdb::parse_inquiry(&[0x7f]).unwrap();
    assert_eq!((absent.qualifier, absent.device_type), (3, 0x1f));
    assert!(cdb::parse_inquiry(&[]).is_none());
    assert_eq!(
        cdb::vpd_payload(&[0, 0x00, 0, 3, 0x00, 0x80, 0x83], 0x00),
        Some(vec![0x00, 0x80, 0x83])
    );
    assert_eq!(
        cdb::vpd_payload(&[0, 0x80, 0, 3, b'A'], 0x80),
        Some(b"A".to_vec())
    );
    assert_eq!(cdb::vpd_payload(&[0, 0x83, 0, 0], 0x80), None);
    // NAA (binary), T10 (ASCII), a target-port designator (association 1, skipped), and a
    // truncated one.
    let mut p = vec![0x01, 0x03, 0, 4, 0x60, 0x01, 0x40, 0x05];
    p.extend([0x02, 0x01, 0, 8]);
    p.extend(b"PXEROOT ");
    p.extend([0x01, 0x13, 0, 2, 0, 1]);
    p.extend([0x01, 0x03, 0, 9, 1]);
    assert_eq!(cdb::designators(&p), ["naa.60014005", "t10.PXEROOT"]);
}

#[test]
fn capacity_data() {
    let mut d = (131_071u64).to_be_bytes().to_vec();
    d.extend(512u32.to_be_bytes());
    d.extend([0; 20]);
    assert_eq!(cdb::parse_capacity16(&d), Some((131_072, 512)));
    assert_eq!(cdb::parse_capacity16(&d[..11]), None);
    assert_eq!(
        cdb::parse_capacity10(&[0, 1, 255, 255, 0, 0, 16, 0]),
        Some((131_072, 4096))
    );
    assert_eq!(
        cdb::parse_capacity10(&[255, 255, 255, 255, 0, 0, 2, 0]),
        None
    );
}

#[test]
fn sense_data() {
    let mut fixed = [0u8; 18];
    fixed[0] = 0x70;
    fixed[2] = 0x05;
    fixed[12] = 0x25;
    let s = Sense::parse(&fixed).unwrap();
    assert_eq!((s.key, s.asc, s.ascq), (5, 0x25, 0));
    assert_eq!(
        s.to_string(),
        "sense key ILLEGAL REQUEST (0x5), ASC/ASCQ 0x25/0x00 (logical unit not supported)"
    );
    let s = Sense::parse(&[0x72, 0x06, 0x29, 0x01]).unwrap();
    assert_eq!((s.key, s.asc, s.ascq), (6, 0x29, 1));
    assert!(Sense::parse(&[0x72, 0x06]).is_none());
    assert!(Sense::parse(&[]).is_none());
    assert!(Sense::parse(&[0x70, 0]).is_none());
    let r = ScsiResult {
        status: CHECK_CONDITION,
        data: Vec::new(),
        sense: Some(Sense {
            key: 2,
            asc: 0x3a,
            ascq: 0,
        }),
    };
    assert_eq!(
        r.describe(),
        "CHECK CONDITION (0x02), sense key NOT READY (0x2), ASC/ASCQ 0x3a/0x00 (medium not present)"
    );
}

#[test]
fn bad_arguments_exit_64_before_any_connection() {
    let mut a = args(&["--chap", "client"]);
    a.portal = "no-such-host".into();
    let out = run(&a, &no_env);
    assert_eq!(out.code, exit::USAGE);
    assert!(out.stdout.is_empty());
}
