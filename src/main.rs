//! `querygpt`: one binary, four roles (`serve`, `api`, `worker`, `migrate`), the `validate` linter and the terminal
//! client (`login`, `ask`, ...: the `querygpt-client` crate, which needs no server settings and logs nothing).

use anyhow::Context;
use clap::{Parser, Subcommand};
use querygpt::app::{self, Role};
use querygpt_common::config::Settings;
use querygpt_sqlsafe::LintTarget;
use std::io::Read;
use std::path::PathBuf;

/// mimalloc returns freed memory to the system. With glibc's allocator, the 19 MiB buffers of argon2 (one per
/// password hash) stayed in the process: 100 registrations left `serve` at 548 MB RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "querygpt", version, about = "QueryGPT-rs: questions in plain language, answered from your database")]
struct Cli {
    /// TOML configuration file; `QUERYGPT_...` environment variables override it.
    #[arg(long, global = true, env = "QUERYGPT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API and worker in one process (embedded default: SQLite, in-process bus, demo database).
    Serve,
    /// An API node only (needs nats_url).
    Api,
    /// A worker only (needs nats_url).
    Worker,
    /// Applies the store's migrations and exits.
    Migrate,
    /// Checks statements with the read-only validator; one JSON verdict per statement on stdout.
    Validate {
        /// postgresql, mysql, sqlite or redis.
        #[arg(long)]
        dialect: LintTarget,
        /// File of statements (default: stdin).
        file: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(querygpt_client::Command),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Client(command) = cli.command {
        std::process::exit(querygpt_client::run(command));
    }
    if let Command::Validate { dialect, file } = &cli.command {
        return validate(*dialect, file.as_deref());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    // Before the runtime: the span exporter, when configured, sends from a thread of its own.
    let _telemetry = querygpt_telemetry::init(&settings.telemetry)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let role = match cli.command {
            Command::Serve => Role::Serve,
            Command::Api => Role::Api,
            Command::Worker => Role::Worker,
            Command::Migrate => {
                app::open_store(&settings, true).await?;
                tracing::info!("migrations applied");
                return Ok(());
            }
            Command::Validate { .. } | Command::Client(_) => unreachable!("handled before the runtime starts"),
        };
        app::start(settings, role, None).await?.run_until(shutdown_signal()).await
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn validate(dialect: LintTarget, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let input = match file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            input
        }
    };
    let verdicts = querygpt_sqlsafe::lint(&input, dialect);
    let mut failed = false;
    for verdict in verdicts {
        failed |= !verdict.ok;
        println!("{}", serde_json::to_string(&verdict)?);
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
