//! `client.api: template` against scripted servers: JSON lines (Ollama's `/api/generate`), one
//! JSON body with workload fields spliced in (ComfyUI's `/runsync`), and a server error the
//! template describes.

use std::path::PathBuf;

use crate::common::*;
use bench_config::client::Api;
use bench_testkit::{Reply, TestServer};
use bench_types::WorkloadRequest;

fn shipped(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/templates")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn ollama_json_lines_give_text_chunks_counts_and_the_end() {
    let lines = [
        r#"{"model":"m","created_at":"t","response":"Hello","done":false}"#,
        r#"{"model":"m","created_at":"t","response":" there","done":false}"#,
        r#"{"model":"m","created_at":"t","response":"!","done":false}"#,
        r#"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"length","prompt_eval_count":11,"eval_count":3}"#,
    ];
    let body = lines.join("\n") + "\n";
    let server = TestServer::start(move |_| Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), "application/x-ndjson".into())],
        body: body.clone().into_bytes(),
    });
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(3, 5.0, 3));
    let mut cfg = config();
    cfg.client.api = Api::Template;
    cfg.client.template = Some(shipped("ollama-generate.yaml"));
    cfg.client.model = "llama3".into();
    cfg.client.record_output_text = true;
    cfg.client
        .extra_body
        .insert("top_k".into(), serde_json::json!(1));
    run(&cfg, dir.path(), &server.url());
    let (rows, _, kv) = records(dir.path());
    assert_eq!(meta(&kv, "bench.api"), Some("template"));
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r.status, "ok", "{r:?}");
        assert_eq!(r.output_text.as_deref(), Some("Hello there!"));
        assert_eq!(r.usage_prompt_tokens, Some(11));
        assert_eq!(r.usage_output_tokens, Some(3));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert_eq!(r.chunk_ns.len(), 3, "three lines carried text");
        assert!(r.stream);
    }
    let seen = server.seen();
    assert_eq!(seen[0].path, "/api/generate");
    assert_eq!(seen[0].header("accept"), Some("application/x-ndjson"));
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"model": "llama3", "prompt": "prompt number 0", "stream": true, "images": [],
                           "options": {"num_predict": 3, "top_k": 1}})
    );
}

#[test]
fn comfyui_runsync_sends_the_workflow_and_reads_the_status() {
    let server = TestServer::start(|s| Reply::Body {
        status: 200,
        content_type: "application/json",
        body: if s.index == 1 {
            r#"{"id":"j1","status":"FAILED","error":"CUDA out of memory"}"#.into()
        } else {
            r#"{"id":"j0","status":"COMPLETED","output":{"images":["aGk="]},"executionTime":1234}"#
                .into()
        },
    });
    let dir = run_dir();
    let job = |i: u64| {
        let fields = serde_json::json!({"width": 512, "height": 768, "steps": 20,
            "workflow": {"3": {"class_type": "KSampler", "inputs": {"steps": 20, "seed": i}}}});
        WorkloadRequest {
            prompt: Some(format!("a cat {i}")),
            fields: fields.as_object().cloned(),
            ..Default::default()
        }
    };
    write_workload(
        dir.path(),
        None,
        (0..3).map(|i| (i as f64 * 5.0, vec![job(i)])).collect(),
    );
    let mut cfg = config();
    cfg.client.api = Api::Template;
    cfg.client.template = Some(shipped("comfyui-runsync.yaml"));
    run(&cfg, dir.path(), &server.url());
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows[0].status, "ok", "{:?}", rows[0]);
    assert!(!rows[0].stream);
    assert_eq!(rows[1].status, "transport_error");
    assert_eq!(
        rows[1].error.as_deref(),
        Some("server error: CUDA out of memory")
    );
    assert_eq!(rows[2].status, "ok");
    let seen = server.seen();
    assert_eq!(seen[0].path, "/runsync");
    assert_eq!(
        seen[2].json(),
        serde_json::json!({"input": {"workflow_json": {"3": {"class_type": "KSampler", "inputs": {"steps": 20, "seed": 2}}}}})
    );
}
