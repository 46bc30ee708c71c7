//! The adapter in-process on 127.0.0.1 with a small blocking client.

use std::collections::HashMap;
use std::net::UdpSocket as StdUdp;
use std::time::Duration;

use super::*;
use crate::tftp::io::CHUNK;
use crate::tftp::Source;

#[derive(Debug)]
struct Mem(HashMap<String, Arc<[u8]>>);

impl Resolver for Mem {
    fn open(&self, path: &str, _peer: SocketAddr) -> Result<Source, OpenError> {
        match self.0.get(path) {
            Some(b) => Ok(Source::Bytes(Arc::clone(b))),
            None if path.contains("..") => Err(OpenError::Denied("'..'".into())),
            None => Err(OpenError::NotFound),
        }
    }
}

fn settings(max_transfers: usize) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        interface: None,
        max_transfers,
        max_blksize: 8192,
        max_window: 32,
        timeout: Duration::from_millis(100),
        retries: 2,
    }
}

fn content(n: usize) -> Arc<[u8]> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

async fn start(settings: Settings, files: &[(&str, Arc<[u8]>)]) -> Running {
    let mem = Mem(files
        .iter()
        .map(|(n, b)| (n.to_string(), b.clone()))
        .collect());
    let bound = Server::new(settings, Arc::new(mem)).bind().unwrap();
    let addr = bound.local_addr();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(bound.serve(rx));
    Running { addr, stop, task }
}

fn client() -> StdUdp {
    let s = StdUdp::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn rrq(file: &str, options: &[(&str, &str)]) -> Vec<u8> {
    Packet::Rrq(Request {
        filename: file.into(),
        mode: Mode::Octet,
        options: options
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    })
    .to_vec()
}

fn recv(s: &StdUdp) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 70000];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    buf.truncate(n);
    (buf, from)
}

fn error_of(packet: &[u8]) -> (u16, String) {
    match Packet::parse(packet).unwrap() {
        Packet::Error { code, message } => (code.0, message),
        other => panic!("not an error: {other:?}"),
    }
}

/// A complete read with ACKs at window ends (blocking); returns the bytes.
fn fetch(
    server: SocketAddr,
    file: &str,
    options: &[(&str, &str)],
) -> Result<Vec<u8>, (u16, String)> {
    let s = client();
    s.send_to(&rrq(file, options), server).unwrap();
    let mut blksize = 512usize;
    let mut window = 1u64;
    let mut data = Vec::new();
    let mut expected: u16 = 1;
    let mut in_window = 0;
    loop {
        let (p, from) = recv(&s);
        match Packet::parse(&p).unwrap() {
            Packet::Oack { options } => {
                for (n, v) in options {
                    match n.as_str() {
                        "blksize" => blksize = v.parse().unwrap(),
                        "windowsize" => window = v.parse().unwrap(),
                        _ => {}
                    }
                }
                s.send_to(&Packet::Ack { block: 0 }.to_vec(), from).unwrap();
            }
            Packet::Data { block, data: d } => {
                assert_eq!(block, expected, "blocks in order on loopback");
                data.extend_from_slice(d);
                in_window += 1;
                let last = d.len() < blksize;
                if last || in_window == window {
                    s.send_to(&Packet::Ack { block }.to_vec(), from).unwrap();
                    in_window = 0;
                }
                expected = expected.wrapping_add(1);
                if last {
                    return Ok(data);
                }
            }
            Packet::Error { code, message } => return Err((code.0, message)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_lock_step_and_windowed_reads() {
    let files = [
        ("empty", content(0)),
        ("a", content(1000)),
        ("b", content(8192 * 3)),
        ("big", content(3_000_000)),
    ];
    let srv = start(settings(8), &files).await;
    let addr = srv.addr;
    for (name, bytes) in files.clone() {
        for opts in [
            vec![],
            vec![("blksize", "1468"), ("tsize", "0")],
            vec![("blksize", "65464")],
            vec![("blksize", "1024"), ("windowsize", "16")],
        ] {
            let got = blocking(move || fetch(addr, name, &opts)).await.unwrap();
            assert!(got == *bytes, "{name} differs");
        }
    }
    srv.stop.send(true).unwrap();
    srv.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oack_carries_granted_values() {
    let srv = start(settings(8), &[("f", content(5000))]).await;
    let addr = srv.addr;
    let p = blocking(move || {
        let s = client();
        let opts = [
            ("tsize", "0"),
            ("blksize", "100000"),
            ("windowsize", "99"),
            ("x", "1"),
        ];
        s.send_to(&rrq("f", &opts), addr).unwrap();
        recv(&s).0
    })
    .await;
    assert_eq!(
        Packet::parse(&p).unwrap(),
        Packet::Oack {
            options: vec![
                ("tsize".into(), "5000".into()),
                ("blksize".into(), "8192".into()),
                ("windowsize".into(), "32".into()),
            ]
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_get_error_packets() {
    let srv = start(settings(8), &[("f", content(10))]).await;
    let addr = srv.addr;
    blocking(move || {
        assert_eq!(
            fetch(addr, "missing", &[]),
            Err((1, "file not found".into()))
        );
        assert_eq!(
            fetch(addr, "../x", &[]),
            Err((2, "access violation".into()))
        );
        let s = client();
        let mut wrq = rrq("f", &[]);
        wrq[1] = 2;
        s.send_to(&wrq, addr).unwrap();
        assert_eq!(error_of(&recv(&s).0), (2, "access violation".into()));
        s.send_to(&[0, 9, 1, 2, 3], addr).unwrap();
        assert_eq!(error_of(&recv(&s).0).0, 4);
        s.send_to(&[0, 1, b'f'], addr).unwrap();
        assert_eq!(error_of(&recv(&s).0).0, 4);
        s.send_to(b"\x00\x01f\0mail\0", addr).unwrap();
        assert_eq!(error_of(&recv(&s).0).0, 4);
        // Still serving.
        assert_eq!(fetch(addr, "f", &[]).unwrap().len(), 10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tid_gets_error_5_and_the_transfer_goes_on() {
    let srv = start(settings(8), &[("f", content(2000))]).await;
    let addr = srv.addr;
    blocking(move || {
        let s = client();
        s.send_to(&rrq("f", &[]), addr).unwrap();
        let (p, tid) = recv(&s);
        assert!(matches!(
            Packet::parse(&p).unwrap(),
            Packet::Data { block: 1, .. }
        ));
        let intruder = client();
        intruder
            .send_to(&Packet::Ack { block: 1 }.to_vec(), tid)
            .unwrap();
        assert_eq!(error_of(&recv(&intruder).0).0, 5);
        s.send_to(&Packet::Ack { block: 1 }.to_vec(), tid).unwrap();
        let (p, _) = recv(&s);
        assert!(matches!(
            Packet::parse(&p).unwrap(),
            Packet::Data { block: 2, .. }
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_holds_its_slot_only_until_abandoned() {
    let srv = start(settings(1), &[("f", content(2000))]).await;
    let addr = srv.addr;
    blocking(move || {
        let stalled = client();
        stalled.send_to(&rrq("f", &[]), addr).unwrap();
        let _ = recv(&stalled); // DATA 1, never acknowledged
                                // A retransmitted RRQ from the same port does not start a second transfer.
        stalled.send_to(&rrq("f", &[]), addr).unwrap();
        assert_eq!(fetch(addr, "f", &[]), Err((0, "too many transfers".into())));
        // 100 ms timeout, 2 retries: abandoned after about 300 ms (1 s leaves room for a busy machine).
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(fetch(addr, "f", &[]).unwrap().len(), 2000);
        // The stalled client saw DATA 1 resent twice, and nothing from a second transfer.
        let mut seen = 0;
        stalled
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1000];
        while let Ok((_, _)) = stalled.recv_from(&mut buf) {
            seen += 1;
        }
        assert_eq!(seen, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_read_through_the_read_ahead_and_directly() {
    let dir = std::env::temp_dir().join(format!("pxeroot-tftp-srv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Larger than the read-ahead chunk, and not a multiple of any blksize used.
    let data = content(CHUNK * 3 + 12_345);
    std::fs::write(dir.join("f"), &data).unwrap();
    // blksize 65464 granted, so that the lock-step read-ahead and the direct sends of blocks
    // of 16 KiB and more run too (the default settings cap blksize at 8192).
    let wide = Settings {
        max_blksize: 65464,
        ..settings(4)
    };
    let bound = Server::new(wide, Arc::new(super::super::RootDir::new(&dir)))
        .bind()
        .unwrap();
    let addr = bound.local_addr();
    let (_stop, rx) = watch::channel(false);
    tokio::spawn(bound.serve(rx));
    for opts in [
        vec![],
        vec![("blksize", "8192"), ("windowsize", "8")],
        vec![("blksize", "65464")],
        vec![("blksize", "32768"), ("windowsize", "4")],
    ] {
        let got = blocking(move || fetch(addr, "f", &opts)).await.unwrap();
        assert!(got == *data, "file content differs");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
