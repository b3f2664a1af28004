//! `bench sim` as a standalone server, and the same client pointed at it by URL.

use std::process::{Command, Stdio};

use crate::common::*;

pub(crate) struct Sim(std::process::Child, pub(crate) String);

impl Sim {
    pub(crate) fn start() -> Sim {
        let (child, url) = bench_testkit::services::spawn_serving(
            Command::new(env!("CARGO_BIN_EXE_bench"))
                .current_dir(root())
                .args(["sim", "--port", "0"])
                .stderr(Stdio::null()),
        );
        Sim(child, url)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_client_runs_unchanged_against_a_server_url_in_every_api() {
    let sim = Sim::start();
    for api in ["openai-chat", "openai-completions", "tgi"] {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = format!("client.endpoint={}", sim.1);
        let api_kv = format!("client.api={api}");
        bench_ok(
            dir.path(),
            &overrides(&[
                &endpoint,
                &api_kv,
                "workload.duration_ms=1000",
                "workload.constant.target_qps=10",
                "dataset.random.num_prompts=10",
                "dataset.random.input_tokens=64",
                "dataset.random.output_tokens=16",
            ]),
        );
        let n = workload_requests(dir.path());
        let rows = read_rows(dir.path());
        assert_eq!(rows.len(), n, "{api}");
        assert_eq!(rows.count("ok"), n, "{api}: {:?}", rows.status);
        for (s, f) in rows.sent_ns.iter().zip(&rows.first_token_ns) {
            assert!(
                f.unwrap() > s.unwrap(),
                "{api}: streamed first token after send"
            );
        }
        let summary = json(dir.path(), "summary.json");
        assert_eq!(summary["run"]["api"], api);
        assert!(summary["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn sigint_and_sigterm_stop_bench_sim_cleanly_as_soon_as_the_url_is_printed() {
    // The signal comes right after the URL line: the handlers must already be in place.
    for sig in ["-INT", "-TERM"] {
        let mut sim = Sim::start();
        let kill = Command::new("kill")
            .args([sig, &sim.0.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        assert_eq!(sim.0.wait().unwrap().code(), Some(0), "{sig}");
    }
}
