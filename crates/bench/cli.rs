//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Which stage(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// dataset, workload, client, analysis in order, each reading the previous one's file.
    All,
    /// Prompts -> <run_dir>/dataset.jsonl.
    Dataset,
    /// Timing -> <run_dir>/workload.jsonl.
    Workload,
    /// Send the workload -> <run_dir>/requests.parquet.
    Client,
    /// Metrics, plots, report -> <run_dir>/summary.json, report.html, ...
    Analysis,
}

/// Benchmark LLM inference servers under real traces and synthetic load.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Stage(s) to run.
    #[arg(long, value_enum, default_value_t = Stage::All)]
    pub stage: Stage,
    /// YAML config (default: ./config.yaml when present, else built-in defaults).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Override a config key: `--override workload.constant.target_qps=2.5` (value parsed as
    /// YAML). `--override help` lists every key with its type and default.
    #[arg(long = "override", value_name = "KEY=VALUE", global = true)]
    pub overrides: Vec<String>,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub show_config: bool,
    /// Less output: warnings only, no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands besides the staged pipeline.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the simulated inference engine (OpenAI-compatible) until Ctrl-C.
    Sim {
        /// Port on 127.0.0.1 (0 picks a free one and prints it).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// One table across runs (summary.json of each), and the same as CSV.
    Compare {
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write the table as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}
