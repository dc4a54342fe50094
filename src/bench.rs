//! `pulse bench`: placeholder replaced by the benchmark.
/// Benchmark arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}
/// Runs the benchmark.
pub async fn run(_settings: crate::config::Settings, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
