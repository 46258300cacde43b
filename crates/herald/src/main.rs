//! The `herald` binary: the server (`herald serve`) and a command-line client
//! for its API.
//!
//! Layout:
//! - `args`: the command line (clap).
//! - `config`: the server's configuration: defaults < TOML file < `HERALD_*` < flags.
//! - `datadir`: the data directory, the secrets-at-rest key and the admin token file.
//! - `serve`: the settings as a `HeraldConfig`, and `herald_server::Herald::start`
//!   until a signal.
//! - `database`: the store commands `migrate` and `doctor`.
//! - `client`: the HTTP client of the client subcommands, and its errors.
//! - `commands`: the client subcommands (webhooks, events, deliveries, event types).
//! - `monitor_commands`: the code monitor client subcommands (repositories, monitors).
//! - `token_commands`: `herald tokens` (create, list, revoke API tokens).
//! - `output`: tables and `key: value` lines for people.
//!
//! Exit codes: 0 on success, 2 for an unusable configuration or command line,
//! 1 for everything else.

mod args;
mod client;
mod commands;
mod config;
mod database;
mod datadir;
mod monitor_commands;
mod output;
mod serve;
mod token_commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::config::ConfigError;

fn main() -> ExitCode {
    keep_large_buffers_out_of_the_heap();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.is::<ConfigError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Large allocations in glibc get their own mappings, returned to the system
/// when freed, but the first such free raises the threshold to that size
/// (up to 32 MiB), after which buffers that large come from the heap and
/// stay with the process: after a flood of 25 MiB request bodies the node
/// kept ~75 MB it no longer used (herald-bench's ingest-flood scenario,
/// 195 MB peak RSS against 120 MB with the threshold fixed). Fixing the
/// threshold turns that adjustment off.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's allocator settings are reachable only through FFI.
fn keep_large_buffers_out_of_the_heap() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 1024 * 1024;
    // SAFETY: mallopt only changes allocator settings; it is called before
    // any other thread exists. A refusal (0) leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_buffers_out_of_the_heap() {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = config::load(&args)?;
            init_tracing(settings.log_format);
            serve::run(settings).await
        }
        Command::Migrate(args) => database::migrate(config::load(&args.as_serve_args())?).await,
        Command::Doctor(args) => database::doctor(config::load(&args.as_serve_args())?).await,
        Command::Webhooks(args) => commands::webhooks(args).await,
        Command::Events(args) => commands::events(args).await,
        Command::Deliveries(args) => commands::deliveries(args).await,
        Command::Receivers(args) => commands::receivers(args).await,
        Command::EventTypes(args) => commands::event_types(args).await,
        Command::Repositories(args) => monitor_commands::repositories(args).await,
        Command::Monitors(args) => monitor_commands::monitors(args).await,
        Command::Tokens(args) => token_commands::tokens(args).await,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON
/// lines; either way a line carries the fields of the spans it is in (a
/// request's `request_id`).
fn init_tracing(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        config::LogFormat::Json => builder.json().with_span_list(true).init(),
    }
}
