//! The command-line tools beside the server, in a crate of their own (`pulse-tools`) so the
//! server builds without them: `pulse bench` (every benchmark, against the real services) and
//! `pulse eval` (the analyzers and the virality model on labelled data). `pulse bench` and
//! `pulse eval` run the `pulse-tools` binary built beside `pulse`.

// The server's modules under their usual names, so the tools read like the rest of Pulse.
use pulse::{actors, analysis, app, auth, config, db, generate, models, sources, streams};
use pulse::{http, search, stories, telemetry, topics, virality};

pub mod bench;
pub mod eval;
mod machine;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

/// Benchmarks and evaluations of Pulse (run as `pulse bench` and `pulse eval`).
pub type Cli = pulse::cli::Cli<Command>;

/// The tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score an analyzer on a labelled TSV file (`label<TAB>text`), or the virality model
    /// (`pulse eval virality`).
    Eval(Box<EvalCommand>),
    /// Measure this machine's ceilings and Pulse end to end against the real services.
    Bench(Box<bench::BenchArgs>),
}

impl pulse::cli::Commands for Command {
    const ABOUT: &'static str = env!("CARGO_PKG_DESCRIPTION");
}

/// `pulse eval`: the text analyzers by default, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalCommand {
    #[command(subcommand)]
    pub what: Option<EvalWhat>,
    #[command(flatten)]
    pub text: Option<eval::sentiment::EvalArgs>,
}

/// What `pulse eval` can score besides the text analyzers.
#[derive(Debug, Subcommand)]
pub enum EvalWhat {
    /// Fit the virality model on cascades and report its error, AUC and calibration.
    Virality(eval::virality::ViralityEvalArgs),
    /// Score the language detector on texts of known language.
    Language(eval::language::LanguageEvalArgs),
    /// Replay labelled posts through story detection and the tf-idf baseline.
    Stories(eval::stories::StoriesEvalArgs),
    /// Forecast cascades' final size before any share, against three baselines.
    Forecast(eval::forecast::ForecastEvalArgs),
    /// Learn which posts a topic's query matched are about it, from labels, against the query
    /// alone and the majority label.
    Relevance(eval::relevance::RelevanceEvalArgs),
    /// Calibrate sentiment to a domain from a few hundred of its labels, against the shipped
    /// models on the domain and on a general set.
    Calibration(eval::calibration::CalibrationEvalArgs),
}

/// Parses arguments, runs the tool, maps failures to exit code 1 with the whole error chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    pulse::cli::run_command(|settings| run(cli.command, settings))
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let command = match command {
        Command::Bench(args) => return bench::run(settings, *args).await,
        Command::Eval(eval) => *eval,
    };
    match (command.what, command.text) {
        (Some(EvalWhat::Virality(args)), _) => eval::virality::run(args),
        (Some(EvalWhat::Language(args)), _) => eval::language::run(args),
        (Some(EvalWhat::Stories(args)), _) => eval::stories::run(args),
        (Some(EvalWhat::Forecast(args)), _) => eval::forecast::run(args),
        (Some(EvalWhat::Relevance(args)), _) => eval::relevance::run(args),
        (Some(EvalWhat::Calibration(args)), _) => eval::calibration::run(args),
        (None, Some(args)) => eval::sentiment::run(args),
        (None, None) => anyhow::bail!("pulse eval needs --task and --data, or `virality`"),
    }
}

/// The `pulse` server binary the benchmarks start: the one beside this binary (both are built
/// into the same directory).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    let tools = std::env::current_exe()?;
    let server = tools.with_file_name("pulse");
    anyhow::ensure!(
        server.is_file(),
        "{} is missing: the benchmarks run the server binary built beside the tools \
         (cargo build --release --workspace)",
        server.display()
    );
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_of(args: &[&str]) -> EvalCommand {
        let mut argv = vec!["pulse", "eval"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Eval(eval) => *eval,
            other => panic!("not an evaluation: {other:?}"),
        }
    }

    #[test]
    fn every_evaluation_reads_its_analyzer_options() {
        let text = eval_of(&[
            "--task",
            "sentiment",
            "--data",
            "t.tsv",
            "--backend",
            "lexicon",
        ]);
        let args = text.text.expect("the text evaluation");
        assert_eq!(
            (args.backend.as_str(), args.data),
            ("lexicon", PathBuf::from("t.tsv"))
        );
        let forecast = eval_of(&[
            "forecast",
            "--data",
            "d",
            "--bundle",
            "b",
            "--backend",
            "onnx",
        ]);
        let Some(EvalWhat::Forecast(args)) = forecast.what else {
            panic!("not the forecast evaluation");
        };
        assert_eq!(args.analyzer.bundles, [PathBuf::from("b")]);
        assert_eq!(args.analyzer.backend, "onnx");
    }
}
