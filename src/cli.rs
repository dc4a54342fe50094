//! The `pulse` command line: one binary, one subcommand per job.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::{Application, ServeOptions};
use crate::config::Settings;
use crate::sources::demo::{self as producer, ProduceOptions};

/// The command line of a Pulse binary (`pulse`, or `pulse-tools` behind `pulse bench` and
/// `pulse eval`): the binary's subcommands `C` under what both share.
#[derive(Debug, Parser)]
#[command(name = "pulse", version, about = C::ABOUT)]
pub struct Cli<C: Commands> {
    #[command(subcommand)]
    pub command: C,
}

/// The subcommands of one binary.
pub trait Commands: Subcommand {
    /// The first line of the binary's help: its crate's description.
    const ABOUT: &'static str;
}

impl Commands for Command {
    const ABOUT: &'static str = env!("CARGO_PKG_DESCRIPTION");
}

/// The subcommands of `pulse`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline and the HTTP API until SIGTERM/SIGINT.
    Serve {
        /// Also run the synthetic producer in process (through Redis, like any producer).
        #[arg(long)]
        demo: bool,
        /// New posts per second of the demo feed (engagements come on top); 0 runs no feed in
        /// this process, for a group of processes fed by one `pulse generate`.
        #[arg(long, default_value_t = 5.0)]
        demo_rate: f64,
        /// Serve without authentication (as `auth.open = true`): everyone is an admin.
        /// `--demo` implies it unless `auth.jwt_secret` is set; with a secret set, `serve`
        /// refuses to start open.
        #[arg(long)]
        open: bool,
    },
    /// Create, list and revoke API keys (stored hashed in PostgreSQL; audited).
    #[command(subcommand)]
    Keys(crate::auth::cli::KeysCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Append synthetic events to the stream.
    Generate {
        /// New posts per second (engagements come on top); 0 sends as fast as Redis accepts.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Seed for a reproducible sequence.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Posts only, no engagement cascades.
        #[arg(long)]
        no_engagements: bool,
        /// Prefix of generated post ids (default: unique per run).
        #[arg(long)]
        id_prefix: Option<String>,
        /// Add the demo scenarios: a product incident, a viral post and a praise wave every
        /// 15 minutes, the first incident 40 s after the start (`serve --demo` always does).
        #[arg(long)]
        scenarios: bool,
    },
    /// Run one source by itself, next to a group of `pulse serve` processes: a name from
    /// `[[sources]]`, or a kind (`jetstream`) with its defaults. Stops on SIGTERM/SIGINT.
    Ingest {
        /// The source's name or kind.
        source: String,
        /// Serve `GET /metrics` (the source's `pulse_source_*` series) on this address.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Append a file of events (JSON lines, or CSV with a column mapping) to the stream,
    /// resumably, with a summary of what was accepted and refused.
    Import(crate::sources::import::ImportArgs),
    /// Score an analyzer on a labelled TSV file (`label<TAB>text`), or the virality model
    /// (`pulse eval virality`). Runs the `pulse-tools` binary built beside this one.
    #[command(disable_help_flag = true)]
    Eval {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Measure this machine's ceilings and Pulse end to end against the real services. Runs the
    /// `pulse-tools` binary built beside this one.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// Parses arguments, runs the command, maps failures to exit code 1 with the whole error chain.
pub fn main() -> ExitCode {
    let cli = Cli::<Command>::parse();
    match cli.command {
        Command::Bench { args } => return tool("bench", args),
        Command::Eval { args } => return tool("eval", args),
        _ => {}
    }
    crate::telemetry::init_logging_on(matches!(cli.command, Command::Keys(_)));
    run_command(|settings| run(cli.command, settings))
}

/// Loads the settings and runs `command` on an actix system: exit code 2 for invalid settings,
/// 1 with the whole error chain for a failure.
pub fn run_command<F, Fut>(command: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            for error in crate::config::shown_errors(&e) {
                eprintln!("error: invalid configuration: {error}");
            }
            return ExitCode::from(2);
        }
    };
    let system = actix_rt::System::new();
    match system.block_on(command(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            demo,
            demo_rate,
            open,
        } => {
            let mut settings = settings;
            if open || (demo && settings.auth.jwt_secret.is_empty()) {
                settings.auth.open = true;
            }
            let options = ServeOptions {
                demo_rate: (demo && demo_rate > 0.0).then_some(demo_rate),
            };
            let app = Application::build(settings, options).await?;
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Keys(command) => crate::auth::cli::run(&settings, command).await,
        Command::Migrate => {
            let applied = crate::db::migrate(&settings.database.url).await?;
            println!("applied {applied} migration(s)");
            Ok(())
        }
        Command::Generate {
            rate,
            count,
            duration,
            seed,
            no_engagements,
            id_prefix,
            scenarios,
        } => {
            let redis = crate::streams::connect(&settings.redis.url, "generator").await?;
            let options = ProduceOptions {
                rate,
                total: count,
                duration: duration.map(Duration::from_secs_f64),
                seed,
                engagements: !no_engagements,
                id_prefix: id_prefix.unwrap_or_else(|| {
                    format!(
                        "g{seed}-{}-",
                        &uuid::Uuid::new_v4().simple().to_string()[..6]
                    )
                }),
                scenarios,
            };
            let report = producer::produce(&redis, &settings.redis.stream, options).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Ingest {
            source,
            metrics_listen,
        } => ingest(&settings, &source, metrics_listen.as_deref()).await,
        Command::Import(args) => {
            let summary = crate::sources::import::run(&settings, args).await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            if let Some(line) = summary.held_back_line {
                eprintln!(
                    "warning: line {line} of {} has no line end and was held back, as its writer \
                     may be part way through it: importing the file again reads it once it is \
                     complete; if the file ends there, add a line end or pass --complete",
                    summary.file
                );
            }
            // A file of which nothing could be read (another delimiter) or whose records are
            // not all UTF-8 (another encoding, read in part) is a failure a script must notice.
            if summary.refused_by_reason.contains_key("invalid_utf8") {
                anyhow::bail!(
                    "records of {} are not UTF-8 and were refused: save the file as UTF-8 and import it again (it resumes at the first of them)",
                    summary.file
                );
            }
            if let Some(why) = &summary.started_over {
                eprintln!("warning: {why}");
            }
            if summary.accepted == 0 && summary.refused > 0 && summary.started_at_line == 1 {
                anyhow::bail!(
                    "no line of {} was accepted ({} refused); see refused_by_reason. None is \
                     marked as read: correct --map, --format or --platform (or the file) and \
                     import it again, and it is read from its start (--restart always starts \
                     there)",
                    summary.file,
                    summary.refused
                );
            }
            Ok(())
        }
        Command::Bench { .. } | Command::Eval { .. } => {
            anyhow::bail!("`pulse bench` and `pulse eval` run in the pulse-tools binary")
        }
    }
}

/// Replaces this process with `pulse-tools SUBCOMMAND ARGS` from beside this binary.
fn tool(subcommand: &str, args: Vec<OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let tools = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("pulse-tools"),
        Err(e) => {
            eprintln!("error: cannot find this binary to find pulse-tools beside it: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !tools.is_file() {
        eprintln!(
            "error: `pulse {subcommand}` runs {}, which is not built: \
             cargo build --release --workspace (or -p pulse-tools)",
            tools.display()
        );
        return ExitCode::FAILURE;
    }
    let error = std::process::Command::new(&tools)
        .arg(subcommand)
        .args(args)
        .exec();
    eprintln!("error: running {}: {error}", tools.display());
    ExitCode::FAILURE
}

/// `pulse ingest`: one source until a signal.
async fn ingest(
    settings: &Settings,
    source: &str,
    metrics_listen: Option<&str>,
) -> anyhow::Result<()> {
    use actix::Actor;
    let chosen = settings
        .sources
        .iter()
        .find(|s| s.name() == source)
        .cloned()
        .or_else(|| crate::config::SourceSettings::of_kind(source))
        .ok_or_else(|| {
            let names: Vec<&str> = settings.sources.iter().map(|s| s.name()).collect();
            anyhow::anyhow!(
                "no source named {source:?}: configured are {names:?}, and the kinds are {:?}",
                crate::config::SourceSettings::KINDS
            )
        })?;
    let metrics_server = metrics_listen.map(serve_metrics).transpose()?;
    let redis = crate::streams::connect(&settings.redis.url, "source").await?;
    crate::sources::listening(&chosen, None)
        .map_err(|e| anyhow::anyhow!("source {:?}: {e}", chosen.name()))?;
    // A source that keeps what the active topics match follows them as `serve` does.
    let (topics, _watcher) = if chosen.topics {
        use actix::Actor;
        let pool = crate::db::pool(&settings.database.url, 1)?;
        let topics = crate::topics::LiveTopics::new();
        crate::actors::topics::refresh(&pool, &topics).await?;
        let watcher =
            crate::actors::topics::TopicWatcher::new(pool, topics.clone(), &settings.topics)
                .start();
        (Some(topics), Some(watcher))
    } else {
        (None, None)
    };
    let mut actor =
        crate::sources::runner::SourceActor::new(chosen, redis, &settings.redis.stream, topics);
    actor.gate(Some(crate::streams::admission::Gate::of_intake(
        std::sync::Arc::new(settings.clone()),
    )));
    let actor = actor.start();
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping the source");
    let _ = actor.send(crate::sources::runner::StopSource).await;
    if let Some(server) = metrics_server {
        server.stop(true).await;
    }
    Ok(())
}

/// A server of `GET /metrics` alone, for a process without the API.
fn serve_metrics(listen: &str) -> anyhow::Result<actix_web::dev::ServerHandle> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let handle = crate::telemetry::metrics_handle();
    let server = HttpServer::new(move || {
        let handle = handle.clone();
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let body = handle.render();
                async move {
                    HttpResponse::Ok()
                        .content_type(crate::http::api::health::PROMETHEUS_CONTENT_TYPE)
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .map_err(|e| anyhow::anyhow!("binding the metrics listener to {listen}: {e}"))?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(%listen, "serving GET /metrics");
    Ok(handle)
}
