//! `pxeroot-target`: the pxeroot server (iSCSI target today; DHCP and TFTP per issue 5).
//!
//! `serve --config FILE` runs in the foreground and logs to stderr; SIGTERM or SIGINT stops
//! accepting, lets in-flight commands finish and exits 0. `check --config FILE` validates the
//! file and explains every problem with its line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pxeroot_target::config::{Config, Severity};
use pxeroot_target::iscsi::server::Server;
use pxeroot_target::{dhcp, pxe, ra, tftp};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "pxeroot-target",
    version,
    about = "pxeroot server: iSCSI target for diskless clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server in the foreground.
    Serve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and explain every problem.
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad configuration (clap uses 2 for bad usage).
const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

/// glibc gives every thread that allocates its own malloc arena and keeps freed memory there.
/// SCSI data buffers are allocated on the blocking threads and freed by the connection writers,
/// so under 16 sessions of 128 KiB reads the arenas tripled the peak RSS (192 MiB, against 59 MiB
/// with two arenas). `serve` therefore runs with `MALLOC_ARENA_MAX=2` unless the environment
/// already sets it: it re-executes itself once with the variable set (same pid, same arguments).
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
    // exec only returns on failure; serve anyway, with glibc's default arenas.
    eprintln!("pxeroot-target: cannot re-execute with MALLOC_ARENA_MAX=2 ({err}); continuing");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve { .. }) {
        limit_malloc_arenas();
    }
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config } => serve(&config),
    }
}

fn print_problems(path: &std::path::Path, problems: &[pxeroot_target::config::Problem]) {
    for p in problems {
        eprintln!("{}: {p}", path.display());
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let checked = Config::load(path);
    print_problems(path, &checked.problems);
    match checked.config {
        Some(c) => {
            let luns: usize = c.targets.iter().map(|t| t.luns.len()).sum();
            println!(
                "{}: ok: {} target(s), {luns} LUN(s), {} portal(s), {} client(s){}{}",
                path.display(),
                c.targets.len(),
                c.iscsi.listen.len(),
                c.clients.len(),
                match &c.dhcp {
                    Some(d) if d.mode == pxeroot_target::config::DhcpMode::Proxy => ", proxyDHCP",
                    Some(_) => ", DHCP",
                    None => "",
                },
                if c.tftp.is_some() { ", TFTP" } else { "" },
            );
            ExitCode::SUCCESS
        }
        None => {
            let errors = checked
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            eprintln!("{}: {errors} error(s)", path.display());
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PXEROOT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let checked = Config::load(path);
    print_problems(path, &checked.problems);
    let Some(config) = checked.config else {
        return ExitCode::from(EXIT_CONFIG);
    };
    // Blocking threads run SCSI commands (file I/O); a bound keeps memory bounded under load.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(async move {
        let server = match Server::new(&config) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                error!(error = %e, "cannot start");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_all = stop_tx.clone();
        // Handlers are installed before any portal listens, so a signal is never fatal.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot install signal handlers");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        tokio::spawn(async move {
            signals.wait().await;
            info!("signal received: stopping (in-flight commands finish first)");
            let _ = stop_tx.send(true);
        });
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(settings) = pxe::dhcp_settings(&config) {
            match dhcp::Server::new(settings) {
                Ok(d) => {
                    let stop = stop_rx.clone();
                    tasks.spawn(
                        async move { ("DHCP", d.serve(stop).await.map_err(|e| e.to_string())) },
                    );
                }
                Err(e) => {
                    error!(error = %e, "cannot start the DHCP server");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            }
        }
        if let Some((settings, files)) = pxe::tftp_settings(&config) {
            info!(generated = files.len(), "per-client boot files ready");
            let t = tftp::Server::new(settings, Arc::new(files));
            let stop = stop_rx.clone();
            tasks.spawn(async move { ("TFTP", t.serve(stop).await.map_err(|e| e.to_string())) });
        }
        if let Some((interface, macs)) = pxe::ra_settings(&config) {
            let stop = stop_rx.clone();
            // Not fatal: without it iPXE only waits for IPv6 as it always does.
            tokio::spawn(async move {
                if let Err(e) = ra::serve(&interface, macs, stop).await {
                    warn!(error = %e, interface, "cannot answer IPv6 router solicitations; iPXE clients will wait ~13 s for IPv6");
                }
            });
        }
        let listen = config.iscsi.listen.clone();
        let iscsi_stop = stop_rx.clone();
        tasks.spawn(async move {
            let r = server.serve(&listen, iscsi_stop).await;
            ("iSCSI", r.map_err(|e| e.to_string()))
        });
        // The first server that fails stops the others: a half-running boot server is worse
        // than one that says why it is not running.
        let mut code = ExitCode::SUCCESS;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((what, Err(e))) => {
                    error!(error = %e, "cannot serve {what}");
                    code = ExitCode::from(EXIT_RUNTIME);
                    let _ = stop_all.send(true);
                }
                Err(e) => {
                    error!(error = %e, "a server task failed");
                    code = ExitCode::from(EXIT_RUNTIME);
                    let _ = stop_all.send(true);
                }
            }
        }
        if code == ExitCode::SUCCESS {
            info!("stopped");
        }
        code
    })
}

/// SIGTERM and SIGINT, both meaning "stop".
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
