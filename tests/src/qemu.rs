//! The QEMU runner.
//!
//! QEMU runs under TCG (KVM is broken on the lab machines) inside a lab namespace, with its serial
//! console on stdout. A reader thread copies the console to `console.log` in the run folder and
//! into an in-memory line buffer that tests read while the guest runs ([`Qemu::wait_for`]). A
//! watchdog kills QEMU at the hard timeout whatever the test is doing, and dropping the runner
//! kills it too.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::Netns;
use crate::process::describe;

/// How the guest starts.
#[derive(Debug, Clone)]
pub enum Boot {
    /// Direct kernel boot: QEMU loads the kernel and initramfs itself; no option ROM.
    Kernel {
        /// bzImage.
        kernel: PathBuf,
        /// Initramfs (cpio, optionally compressed).
        initrd: PathBuf,
        /// Kernel command line.
        append: String,
    },
    /// Network boot through the NIC's iPXE option ROM (`-boot n`).
    Pxe,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Boot method.
    pub boot: Boot,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// The tap device in the namespace that the guest's virtio NIC attaches to.
    pub tap: String,
    /// The NIC's MAC address.
    pub mac: String,
    /// Hard timeout: QEMU is killed when it runs longer.
    pub timeout: Duration,
}

impl Spec {
    /// A 512 MiB guest on `tap0` with MAC 52:54:00:12:34:56 and a 120 s hard timeout.
    pub fn new(boot: Boot) -> Spec {
        Spec {
            boot,
            memory_mb: 512,
            tap: "tap0".into(),
            mac: "52:54:00:12:34:56".into(),
            timeout: Duration::from_secs(120),
        }
    }
}

/// One console line with the host time at which it arrived.
#[derive(Debug, Clone)]
pub struct Line {
    /// Time since QEMU was started.
    pub at: Duration,
    /// The text, without line terminator.
    pub text: String,
}

#[derive(Debug, Default)]
struct ConsoleState {
    lines: Vec<Line>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Console {
    state: Mutex<ConsoleState>,
    changed: Condvar,
}

impl Console {
    fn lock(&self) -> MutexGuard<'_, ConsoleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running guest.
#[derive(Debug)]
pub struct Qemu {
    child: Arc<Mutex<Child>>,
    console: Arc<Console>,
    log: PathBuf,
    started: Instant,
    started_wall: std::time::SystemTime,
    deadline: Instant,
}

impl Qemu {
    /// Start QEMU inside `ns`; the console goes to `<run dir>/<name>.console.log`.
    ///
    /// # Errors
    /// When QEMU cannot be started.
    pub fn spawn(ns: &Netns, name: &str, spec: &Spec) -> Result<Qemu> {
        let log = ns.run_dir().join(format!("{name}.console.log"));
        let mut cmd = ns.command("qemu-system-x86_64");
        cmd.args([
            "-accel",
            "tcg",
            "-no-reboot",
            "-display",
            "none",
            "-vga",
            "none",
        ])
        .args(["-monitor", "none", "-serial", "stdio"])
        .args(["-m", &spec.memory_mb.to_string()])
        .args([
            "-netdev",
            &format!("tap,id=n0,ifname={},script=no,downscript=no", spec.tap),
        ]);
        match &spec.boot {
            Boot::Kernel {
                kernel,
                initrd,
                append,
            } => {
                cmd.args([
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={},romfile=", spec.mac),
                ])
                .arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .args(["-append", append]);
            }
            Boot::Pxe => {
                cmd.args([
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={}", spec.mac),
                ])
                .args(["-boot", "n"]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start `{}`", describe(&cmd)))?;
        let console = Arc::new(Console::default());
        let file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        if let Some(stdout) = child.stdout.take() {
            let console = Arc::clone(&console);
            std::thread::spawn(move || read_console(stdout, file, &console, started));
        }
        if let Some(stderr) = child.stderr.take() {
            let console = Arc::clone(&console);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    push_line(&console, started, format!("qemu: {line}"));
                }
            });
        }
        let child = Arc::new(Mutex::new(child));
        let deadline = started + spec.timeout;
        let watched = Arc::downgrade(&child);
        std::thread::spawn(move || watchdog(watched, deadline));
        Ok(Qemu {
            child,
            console,
            log,
            started,
            started_wall,
            deadline,
        })
    }

    /// The wall-clock time QEMU was started at (to place host-side log lines on the timeline).
    pub fn started_at(&self) -> std::time::SystemTime {
        self.started_wall
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id()
    }

    /// The console log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The console so far.
    pub fn lines(&self) -> Vec<Line> {
        self.console.lock().lines.clone()
    }

    /// Wait until a console line contains `needle`; returns that line. Fails when the guest
    /// stops, the timeout passes, or a line contains one of `failures` (the guest's own
    /// failure markers), with the end of the console in the message.
    ///
    /// # Errors
    /// As described.
    pub fn wait_for(&self, needle: &str, failures: &[&str], timeout: Duration) -> Result<Line> {
        let until = (Instant::now() + timeout).min(self.deadline);
        let mut seen = 0;
        let mut state = self.console.lock();
        loop {
            for line in &state.lines[seen..] {
                if line.text.contains(needle) {
                    return Ok(line.clone());
                }
                if let Some(f) = failures.iter().find(|f| line.text.contains(*f)) {
                    let text = line.text.clone();
                    drop(state);
                    bail!("guest reported failure ({f}): {text}\n{}", self.tail(40));
                }
            }
            seen = state.lines.len();
            if state.closed {
                drop(state);
                bail!(
                    "guest stopped before printing {needle:?}\n{}",
                    self.tail(40)
                );
            }
            let now = Instant::now();
            if now >= until {
                drop(state);
                bail!(
                    "no {needle:?} on the console after {:.1} s\n{}",
                    self.started.elapsed().as_secs_f64(),
                    self.tail(40)
                );
            }
            state = self
                .console
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Wait for QEMU to exit (the guest powers off), up to `timeout`.
    ///
    /// # Errors
    /// When it is still running at the timeout (it is then killed).
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        let until = (Instant::now() + timeout).min(self.deadline);
        loop {
            {
                let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
                if Instant::now() >= until {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("guest did not power off in time\n{}", self.tail(40));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `n` console lines, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let state = self.console.lock();
        let start = state.lines.len().saturating_sub(n);
        let mut s = format!("--- console ({}) last {n} lines ---\n", self.log.display());
        for line in &state.lines[start..] {
            s.push_str(&line.text);
            s.push('\n');
        }
        s
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn push_line(console: &Console, started: Instant, text: String) {
    console.lock().lines.push(Line {
        at: started.elapsed(),
        text,
    });
    console.changed.notify_all();
}

fn read_console(stdout: impl std::io::Read, mut file: File, console: &Console, started: Instant) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = file.write_all(&buf);
                let text = String::from_utf8_lossy(&buf);
                push_line(
                    console,
                    started,
                    text.trim_end_matches(['\n', '\r']).to_string(),
                );
            }
        }
    }
    let _ = file.flush();
    console.lock().closed = true;
    console.changed.notify_all();
}

fn watchdog(child: std::sync::Weak<Mutex<Child>>, deadline: Instant) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(child) = child.upgrade() else { return };
        let mut child = child.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("lab: QEMU reached its hard timeout; killed");
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
    }
}
