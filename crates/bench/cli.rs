//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Which stage(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// dataset, workload, client, analysis in order, each reading the previous one's file
    /// (the dataset stage is skipped when the workload does not read prompts from it).
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

const EXAMPLES: &str = "\
Examples:
  bench --config config.yaml                     the default 20 s run against the simulated engine
  bench --endpoint http://localhost:8000 --model meta-llama/Llama-3.1-8B-Instruct \\
        --rate 5 --num-requests 200 --input-tokens 1024 --output-tokens 128
  bench --concurrency 16 --num-requests 500      a closed loop: 16 requests in flight
  bench --config config.yaml --config config/workload/azure.yaml   layered configs
  bench --stage analysis -o output/latest        analyse a run again
  bench chat --config config/chat.yaml           talk to the endpoint, figures after each reply
  bench --override help                          every config key, its type and default
  bench compare output/run-a output/run-b        one table across runs
  bench sweep config/experiments/dynamo-matrix.yaml   many runs: axes, repeats, a table
  bench merge output/shards --out output/merged  the shards of a sharded run, as one run
  bench k8s render config.yaml --shards 8 --out k8s/   Kubernetes manifests for a sharded run
  bench push output/latest --to s3://bucket/runs      copy a run to object storage
  bench pull s3://bucket/runs/run-20260101 pulled/run  and back, every file checked";

/// Benchmark LLM inference servers under real traces and synthetic load.
#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Stage(s) to run, in pipeline order (repeat or comma-separate: `--stage client,analysis`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub stage: Vec<StageArg>,
    /// YAML config; repeat to layer several (later files win). Default: ./config.yaml when
    /// present, else built-in defaults. Relative paths inside a file are relative to it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Override a config key: `--override workload.constant.target_qps=2.5` (value parsed as
    /// YAML). `--override help` lists every key with its type and default.
    #[arg(long = "override", value_name = "KEY=VALUE", global = true)]
    pub overrides: Vec<String>,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub show_config: bool,
    /// Write into a run directory that already holds a finished run (its files are replaced).
    #[arg(long)]
    pub force: bool,
    /// Less output: warnings only, no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The settings people change most, each a shortcut for the `--override`s its help shows.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Common settings (shortcuts for --override)")]
pub struct Common {
    /// Server base URL, or `sim` for the built-in simulated engine
    /// [= --override client.endpoint=URL]
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Model name sent in each request [= --override client.model=NAME]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Wire protocol: openai-chat, openai-completions or tgi [= --override client.api=API]
    #[arg(long, value_name = "API")]
    pub api: Option<String>,
    /// Open loop at this many requests per second
    /// [= --override workload.type=constant --override workload.constant.target_qps=R]
    #[arg(long, value_name = "R", conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop with this many requests in flight
    /// [= --override workload.type=concurrency --override workload.concurrency.concurrency=N]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// Exactly this many requests (open loop: arrivals at the rate, however long it takes)
    /// [= --override workload.num_requests=N]
    #[arg(long, value_name = "N")]
    pub num_requests: Option<u64>,
    /// Random prompts of this many tokens
    /// [= --override dataset.type=random --override dataset.random.input_tokens=N]
    #[arg(long, value_name = "N")]
    pub input_tokens: Option<u32>,
    /// Ask for this many output tokens per request
    /// [= --override dataset.type=random --override dataset.random.output_tokens=N]
    #[arg(long, value_name = "N")]
    pub output_tokens: Option<u32>,
    /// Length of a generated (rate) workload in seconds
    /// [= --override workload.duration_ms=1000*S]
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Run directory [= --override run_dir=DIR]
    #[arg(long, short = 'o', value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Name of the run; the default run directory starts with it [= --override name=NAME]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// A string as a YAML (JSON) string literal, so `--model 1.5` stays the string `1.5`.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

impl Common {
    /// The `--override key=value`s these flags stand for, in flag order.
    pub fn overrides(&self) -> Vec<String> {
        let mut o = Vec::new();
        let mut set = |k: &str, v: String| o.push(format!("{k}={v}"));
        if let Some(v) = &self.endpoint {
            set("client.endpoint", quoted(v));
        }
        if let Some(v) = &self.model {
            set("client.model", quoted(v));
        }
        if let Some(v) = &self.api {
            set("client.api", quoted(v));
        }
        if let Some(v) = self.rate {
            set("workload.type", "constant".into());
            set("workload.constant.target_qps", v.to_string());
        }
        if let Some(v) = self.concurrency {
            set("workload.type", "concurrency".into());
            set("workload.concurrency.concurrency", v.to_string());
        }
        if let Some(v) = self.num_requests {
            set("workload.num_requests", v.to_string());
        }
        if let Some(v) = self.input_tokens {
            set("dataset.type", "random".into());
            set("dataset.random.input_tokens", v.to_string());
        }
        if let Some(v) = self.output_tokens {
            set("dataset.type", "random".into());
            set("dataset.random.output_tokens", v.to_string());
        }
        if let Some(v) = self.duration {
            set("workload.duration_ms", format!("{}", (v * 1000.0).round()));
        }
        if let Some(v) = &self.run_dir {
            set("run_dir", quoted(&v.display().to_string()));
        }
        if let Some(v) = &self.name {
            set("name", quoted(v));
        }
        o
    }
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
    /// Talk to the endpoint: a prompt on stdin, each reply streamed with its TTFT, TPOT and
    /// tokens; `/save FILE` keeps the conversation as a replayable dataset (docs/CLIENT.md).
    Chat,
    /// Run an experiment: every cell of its axes, each repeat an ordinary run directory, then
    /// experiment.json and cells.csv across them (docs/EXPERIMENTS.md).
    Sweep {
        /// The experiment file (YAML: name, base, overrides, axes, repeats, cooldown_s, ...).
        file: PathBuf,
        /// Skip the runs already finished with the same resolved config; redo the rest.
        #[arg(long)]
        resume: bool,
        /// Print the cells and the planned time; run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The run catalog (catalog.url): list, show, tag, remove and import runs and experiments.
    Runs {
        #[command(subcommand)]
        cmd: RunsCmd,
    },
    /// Serve Bud's benchmark API and the web dashboard over the catalog (docs/SERVICE.md).
    Serve {
        /// The catalog URL [= --override catalog.url=URL].
        #[arg(long, value_name = "URL")]
        catalog: Option<String>,
        /// Address to listen on [= --override serve.listen=ADDR]; beyond loopback a token is
        /// required (serve.token_env).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Runs executing at once [= --override serve.max_parallel=N].
        #[arg(long, value_name = "N")]
        max_parallel: Option<u32>,
    },
    /// Upload a run (or experiment) directory to object storage: every file, manifest.json
    /// (with every file's sha256) last (docs/STORAGE.md).
    Push {
        /// The run or experiment directory.
        run_dir: PathBuf,
        /// Where: `s3://bucket[/prefix]`; the copy lands in `<URL>/<directory name>/`
        /// (default: storage.url).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
    /// Download a pushed run (or experiment) into DIR, every file checked against its sha256.
    Pull {
        /// The copy: `s3://bucket/prefix/<run>` (storage.endpoint and storage.region apply).
        url: String,
        /// A new local directory.
        dir: PathBuf,
    },
    /// One table across runs (summary.json of each), and the same as CSV.
    Compare {
        /// Run directories, or experiment directories (all their runs).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write the table as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// The shards of a sharded run (client.shard) as one run directory: one requests.parquet
    /// with a `shard` column, one manifest listing every shard's, then the normal analysis
    /// (docs/KUBERNETES.md).
    Merge {
        /// Shard run directories, or directories holding them (one level down).
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<String>,
        /// The merged run directory.
        #[arg(long, value_name = "RUN_DIR")]
        out: PathBuf,
        /// Replace a run already in --out.
        #[arg(long)]
        force: bool,
        /// Warn when the shards' clocks may be further apart than this (ms).
        #[arg(long, default_value_t = 10.0, value_name = "MS")]
        clock_bound_ms: f64,
    },
    /// Kubernetes manifests for sharded runs (docs/KUBERNETES.md).
    K8s {
        #[command(subcommand)]
        command: K8sCommand,
    },
}

/// `bench k8s` subcommands.
#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Write plain manifests into DIR: a ConfigMap (config and workload), an Indexed Job of
    /// shards, a merge Job and run.sh; for an experiment, every run's and an Argo Workflow
    /// running them in sequence.
    Render {
        /// A run config (YAML) or an experiment file (with `axes`).
        input: PathBuf,
        /// Directory for the manifests.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Shards (pods) per run.
        #[arg(long, default_value_t = 4, value_name = "N")]
        shards: u32,
        /// The bench image (built from the Dockerfile).
        #[arg(long, default_value = "bench:latest")]
        image: String,
        /// Namespace of every object.
        #[arg(long, default_value = "default", value_name = "NS")]
        namespace: String,
        /// Results to object storage (s3://bucket/prefix) instead of a shared volume.
        #[arg(long, value_name = "URL")]
        storage: Option<String>,
        /// The shards' shared start, RFC 3339 UTC (default: ten minutes from now).
        #[arg(long, value_name = "TIME")]
        start_at: Option<String>,
        /// CPU of a shard pod (request and limit).
        #[arg(long, default_value = "2")]
        cpu: String,
        /// Memory of a shard pod (request and limit).
        #[arg(long, default_value = "4Gi")]
        memory: String,
        /// Image of the init container that waits for the endpoint (needs sh and curl).
        #[arg(long, default_value = "curlimages/curl:8.11.1")]
        wait_image: String,
    },
}

/// `bench runs` commands.
#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Runs and experiments, newest first.
    List {
        /// Text in the name, description, model, id or a tag.
        #[arg(long)]
        search: Option<String>,
        /// Carrying this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Of this model.
        #[arg(long)]
        model: Option<String>,
        /// processing, success, failed or interrupted.
        #[arg(long)]
        status: Option<String>,
        /// Started on or after this date (2026-12-01) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Page (1-based).
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Entries per page.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One entry: by id, id prefix (6+ characters) or name (the newest of that name).
    Show {
        /// Id, id prefix or name.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add (+TAG) and remove (-TAG) tags.
    Tag {
        /// Id, id prefix or name.
        id: String,
        /// +TAG or -TAG, any number.
        #[arg(required = true, allow_hyphen_values = true)]
        changes: Vec<String>,
    },
    /// Remove an entry; with --files also its directory.
    Rm {
        /// Id, id prefix or name.
        id: String,
        /// Also delete the run (or experiment) directory.
        #[arg(long)]
        files: bool,
    },
    /// Register existing run or experiment directories (old ones included).
    Import {
        /// Run or experiment directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}
