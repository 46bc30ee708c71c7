use super::*;

fn image() -> PathBuf {
    let p = std::env::temp_dir().join(format!("pxrt-config-{}.img", std::process::id()));
    if !p.exists() {
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
    }
    p
}

fn example() -> String {
    format!(
        r#"[iscsi]
listen = ["0.0.0.0:3260", "[::]:3260"]

[[target]]
name = "iqn.2026-11.org.example:disk1"
[[target.lun]]
id = 0
path = "{}"
read_only = false
[[target.acl]]
initiator = "iqn.2013-02.org.example.client:default"
chap = {{ user = "client", secret = "client-secret-1" }}
mutual_chap = {{ user = "target", secret = "target-secret-1" }}
"#,
        image().display()
    )
}

#[test]
fn the_readme_example_is_valid() {
    let checked = Config::parse(&example());
    assert_eq!(checked.problems, vec![]);
    let config = checked.config.unwrap();
    assert_eq!(config.iscsi.listen.len(), 2);
    let t = &config.targets[0];
    assert_eq!(t.name, "iqn.2026-11.org.example:disk1");
    assert_eq!(t.luns[0].id, 0);
    assert!(t.luns[0].write_cache);
    let acl = &t.acls[0];
    assert!(acl.matches(
        "IQN.2013-02.org.example.client:default",
        "10.0.0.5".parse().unwrap()
    ));
    assert!(!acl.matches(
        "iqn.2013-02.org.example.client:other",
        "10.0.0.5".parse().unwrap()
    ));
    assert_eq!(acl.chap.as_ref().unwrap().user, "client");
}

fn problems(text: &str) -> Vec<String> {
    Config::parse(text)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn each_mistake_is_named_with_its_line() {
    let text = example()
        .replace("0.0.0.0:3260", "0.0.0.0:99999")
        .replace("iqn.2026-11.org.example:disk1", "disk1")
        .replace("target-secret-1", "client-secret-1");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 2, column 11: error: iscsi.listen: \"0.0.0.0:99999\"")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|m| m
            .starts_with("line 5, column 8: error: target.name \"disk1\" is not an iSCSI name")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 13,") && m.contains("different secrets")),
        "{p:#?}"
    );
    assert!(
        p.iter().all(|m| !m.contains("client-secret-1")),
        "a secret leaked: {p:#?}"
    );
    assert!(Config::parse(&text).config.is_none());
}

#[test]
fn syntax_errors_and_unknown_keys_have_lines() {
    let p = problems("[iscsi]\nlisten = [\"0.0.0.0:3260\"\n");
    assert!(
        p[0].starts_with("line 2,") || p[0].starts_with("line 3,"),
        "{p:?}"
    );
    let p = problems("[iscsi]\nlisen = []\n");
    assert!(
        p[0].starts_with("line 2, column 1: error: unknown field `lisen`"),
        "{p:?}"
    );
}

#[test]
fn missing_image_duplicate_lun_and_short_secret() {
    let text = format!(
        "[[target]]\nname = \"iqn.2026-11.org.example:a\"\n[[target.lun]]\nid = 0\npath = \"/nonexistent/x.img\"\n\
         [[target.lun]]\nid = 0\npath = \"{}\"\n[[target.acl]]\ninitiator = \"*\"\nchap = {{ user = \"u\", secret = \"short\" }}\n",
        image().display()
    );
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 5, column 8: error: target.lun.path /nonexistent/x.img")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("line 7, column 6: error: LUN 0 appears twice")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|m| m.starts_with("line 11,")
            && m.contains("warning")
            && m.contains("at least 12")),
        "{p:#?}"
    );
    assert!(p.iter().all(|m| !m.contains("\"short\"")));
}

#[test]
fn cidr_matching() {
    let c = Cidr::parse("10.0.0.0/24").unwrap();
    assert!(c.contains("10.0.0.77".parse().unwrap()));
    assert!(!c.contains("10.0.1.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.0.0.9".parse().unwrap()));
    assert!(Cidr::parse("fd00::/8")
        .unwrap()
        .contains("fd12::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("192.0.2.1".parse().unwrap()));
    assert_eq!(Cidr::parse("10.0.0.0/33"), None);
    assert_eq!(Cidr::parse("nope"), None);
}

#[test]
fn iscsi_names() {
    for ok in [
        "iqn.2013-02.org.example.client:default",
        "eui.0123456789ABCDEF",
        "naa.52004567BA64678D",
    ] {
        assert!(valid_iscsi_name(ok), "{ok}");
    }
    for bad in [
        "disk1",
        "iqn.2013.org",
        "iqn.13-02.org.x",
        "eui.123",
        "iqn.2013-02.org.example has space",
    ] {
        assert!(!valid_iscsi_name(bad), "{bad}");
    }
}
