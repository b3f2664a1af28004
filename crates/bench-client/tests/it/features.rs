//! Request options and outputs: warmup rows, the AIBrix output file, images, headers and the API
//! key, hash_ids prompts, TGI and completions, keep-alive, a hyper server.

use std::time::Duration;

use crate::common::*;
use bench_config::client::Api;
use bench_testkit::{Reply, TestServer};
use bench_types::{BlockSpec, WorkloadHeader, WorkloadRequest};

#[test]
fn warmup_rows_are_extra_marked_and_before_the_anchor() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 3));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(4, 5.0, 3));
    let mut cfg = config();
    cfg.client.warmup_requests = 2;
    let out = run(&cfg, dir.path(), &server.url());
    let (rows, warm, _) = records(dir.path());
    assert_eq!(rows.len(), 4);
    assert_eq!(warm.len(), 2);
    assert_eq!(out.warmup_rows, 2);
    assert_eq!(
        out.by_status[bench_types::RequestStatus::Ok],
        4,
        "warmup rows are not counted with the workload"
    );
    assert_eq!(
        warm.iter().map(|r| r.request_id).collect::<Vec<_>>(),
        vec![4, 5]
    );
    for w in &warm {
        assert_eq!(w.status, "ok");
        assert!(
            w.sent_ns.unwrap() < 0 && w.end_ns.unwrap() <= 0,
            "warmup happens before the anchor: {w:?}"
        );
        assert_eq!(w.session_id, None);
    }
    assert_eq!(server.count(), 6);
    // The first two workload prompts were copied.
    let seen = server.seen();
    assert_eq!(seen[0].json()["messages"][0]["content"], "prompt number 0");
}

/// output.jsonl has AIBrix's fields with the same types as AIBrix's own client output.
#[test]
fn aibrix_output_reads_back_like_aibrix_client_output() {
    let server = TestServer::start(|s| {
        if s.index == 2 {
            Reply::Body {
                status: 500,
                content_type: "application/json",
                body: "{\"error\":\"boom\"}".into(),
            }
        } else {
            Reply::tokens(Api::OpenaiChat, 5)
        }
    });
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(3, 5.0, 5));
    let mut cfg = config();
    cfg.client.write_aibrix_output = true;
    cfg.client.warmup_requests = 1;
    let out = run(&cfg, dir.path(), &server.url());
    assert!(out.output.outputs.contains(&"output.jsonl".to_string()));
    let text = std::fs::read_to_string(dir.path().join("output.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "one line per workload request, warmup excluded"
    );

    // Every key of AIBrix's real client output, with the same JSON types.
    let sample = bench_types::testdata::shared_data("aibrix-samples/client-output/output.jsonl");
    let reference: serde_json::Value = match &sample {
        Some(p) => {
            serde_json::from_str(std::fs::read_to_string(p).unwrap().lines().next().unwrap())
                .unwrap()
        }
        None => {
            serde_json::json!({"input": [{"role": "user", "content": "x"}], "output": "y", "prompt_tokens": 1, "output_tokens": 1, "total_tokens": 2, "latency": 0.5, "throughput": 2.0})
        }
    };
    let mut ok = lines.iter().filter(|l| l["status"] == "success");
    let first = ok.next().unwrap();
    for (k, v) in reference.as_object().unwrap() {
        let mine = &first[k];
        let same_type = matches!(
            (v, mine),
            (serde_json::Value::Number(_), serde_json::Value::Number(_))
                | (serde_json::Value::String(_), serde_json::Value::String(_))
                | (serde_json::Value::Array(_), serde_json::Value::Array(_))
        );
        assert!(same_type, "key {k}: AIBrix has {v}, we wrote {mine}");
    }
    assert_eq!(
        first["input"],
        serde_json::json!([{"role": "user", "content": "prompt number 0"}])
    );
    assert_eq!(first["output"], "t0 t1 t2 t3 t4 ");
    assert_eq!(
        (
            first["prompt_tokens"].as_u64(),
            first["output_tokens"].as_u64(),
            first["total_tokens"].as_u64()
        ),
        (Some(10), Some(5), Some(15))
    );
    let latency = first["latency"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 1.0);
    assert!((first["throughput"].as_f64().unwrap() - 5.0 / latency).abs() < 1e-6);
    assert!(first["ttft"].as_f64().unwrap() <= latency);
    let failed = lines.iter().find(|l| l["status"] == "error").unwrap();
    assert_eq!(
        (
            failed["error_type"].as_str(),
            failed["status_code"].as_u64()
        ),
        (Some("http_error"), Some(500))
    );
}

#[test]
fn images_go_out_as_data_url_content_parts() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 1));
    let dir = run_dir();
    std::fs::write(dir.path().join("cat.png"), [0x89u8, b'P', b'N', b'G']).unwrap();
    let r = WorkloadRequest {
        image_path: Some("cat.png".into()),
        ..req("what is this?", 1)
    };
    write_workload(dir.path(), None, vec![(0.0, vec![r])]);
    run(&config(), dir.path(), &server.url());
    let body = server.seen()[0].json();
    assert_eq!(
        body["messages"][0]["content"],
        serde_json::json!([{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}])
    );
}

#[test]
fn headers_routing_and_body_options() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 2));
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![(
            0.0,
            vec![
                req("a", 50),
                WorkloadRequest {
                    output_length: None,
                    ..req("b", 0)
                },
            ],
        )],
    );
    let mut cfg = config();
    cfg.client.routing_strategy = Some("prefix-cache".into());
    cfg.client.headers.insert("X-Team".into(), "bench".into());
    cfg.client.max_output_tokens = Some(20);
    cfg.client.temperature = Some(0.0);
    cfg.client.model = "my-model".into();
    cfg.client
        .extra_body
        .insert("top_k".into(), serde_json::json!(1));
    cfg.client.record_output_text = true;
    run(&cfg, dir.path(), &server.url());
    let seen = server.seen();
    let s = &seen[0];
    assert_eq!(s.path, "/v1/chat/completions");
    assert_eq!(s.header("routing-strategy"), Some("prefix-cache"));
    assert_eq!(s.header("x-team"), Some("bench"));
    assert_eq!(s.header("authorization"), None);
    let b = s.json();
    assert_eq!(b["model"], "my-model");
    assert_eq!(
        (
            b["max_tokens"].as_u64(),
            b["min_tokens"].as_u64(),
            b["ignore_eos"].as_bool()
        ),
        (Some(20), Some(20), Some(true))
    );
    assert_eq!(
        (
            b["temperature"].as_f64(),
            b["top_k"].as_u64(),
            b["stream_options"]["include_usage"].as_bool()
        ),
        (Some(0.0), Some(1), Some(true))
    );
    assert_eq!(
        seen[1].json()["max_tokens"].as_u64(),
        Some(20),
        "the cap applies when the workload gives no length"
    );
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows[0].max_tokens, Some(20));
    assert_eq!(rows[0].output_text.as_deref(), Some("t0 t1 "));
    let cl100k = bench_text::Tokenizer::load("builtin:cl100k_base").unwrap();
    assert_eq!(
        rows[0].output_tokens,
        Some(cl100k.count("t0 t1 ") as u32),
        "client-side count of the received text"
    );
}

/// Mooncake-style prompts: the text sent is exactly the shared blocks of `hash_ids`.
#[test]
fn hash_ids_prompts_are_the_shared_blocks() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiCompletions, 1));
    let dir = run_dir();
    let spec = BlockSpec {
        generator: bench_text::BLOCK_GENERATOR.into(),
        tokenizer: "builtin:cl100k_base".into(),
        seed: 3,
        block_tokens: 16,
    };
    let header = WorkloadHeader {
        prompt_blocks: Some(spec),
        ..WorkloadHeader::open_loop("mooncake")
    };
    let r = |ids: Vec<u64>, len| WorkloadRequest {
        hash_ids: Some(ids),
        prompt_length: Some(len),
        output_length: Some(1),
        ..Default::default()
    };
    write_workload(
        dir.path(),
        Some(header),
        vec![
            (0.0, vec![r(vec![1, 2], 30)]),
            (1.0, vec![r(vec![1, 3], 32)]),
        ],
    );
    let mut cfg = config();
    cfg.client.api = Api::OpenaiCompletions;
    run(&cfg, dir.path(), &server.url());
    let tg = bench_text::TextGen::new(&bench_text::Tokenizer::load("builtin:cl100k_base").unwrap())
        .unwrap();
    let seen = server.seen();
    for (s, (ids, len)) in seen
        .iter()
        .zip([(vec![1u64, 2], 30usize), (vec![1, 3], 32)])
    {
        let mut want = String::new();
        tg.blocks_prompt(3, &ids, 16, len, &mut want);
        assert_eq!(s.json()["prompt"].as_str().unwrap(), want);
    }
    let (rows, _, _) = records(dir.path());
    assert_eq!(
        (rows[0].prompt_tokens, rows[1].prompt_tokens),
        (Some(30), Some(32))
    );
}

#[test]
fn tgi_streaming_and_not() {
    for stream in [true, false] {
        let server = TestServer::start(move |_| {
            if stream {
                Reply::tokens(Api::Tgi, 3)
            } else {
                Reply::Body {
                    status: 200,
                    content_type: "application/json",
                    body: "{\"generated_text\":\"a b c\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":3}}".into(),
                }
            }
        });
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(2, 1.0, 3));
        let mut cfg = config();
        cfg.client.api = Api::Tgi;
        cfg.client.stream = stream;
        run(&cfg, dir.path(), &server.url());
        let seen = server.seen();
        assert_eq!(
            seen[0].path,
            if stream {
                "/generate_stream"
            } else {
                "/generate"
            }
        );
        assert_eq!(
            seen[0].json()["parameters"]["max_new_tokens"].as_u64(),
            Some(3)
        );
        assert_eq!(seen[0].json()["inputs"], "prompt number 0");
        let (rows, _, _) = records(dir.path());
        for r in &rows {
            assert_eq!(r.status, "ok", "{r:?}");
            assert_eq!(r.usage_output_tokens, Some(3));
            assert_eq!(r.finish_reason.as_deref(), Some("length"));
            assert_eq!(r.chunk_ns.len(), if stream { 3 } else { 0 });
        }
    }
}

/// Sequential requests reuse one kept-alive connection; a server that closes after each
/// response costs a new connection each time (recorded in connect_ns) but no error.
#[test]
fn keep_alive_reuse_and_servers_that_close() {
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 2));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(5, 30.0, 2));
    run(&config(), dir.path(), &server.url());
    assert_eq!(server.connections(), 1);
    let (rows, _, _) = records(dir.path());
    assert!(rows[0].connect_ns.is_some());
    assert!(
        rows[1..].iter().all(|r| r.connect_ns.is_none()),
        "later requests reuse the connection"
    );

    let body = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let closing = TestServer::start(move |_| Reply::Raw(raw.clone().into_bytes()));
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(5, 30.0, 2));
    let mut cfg = config();
    cfg.client.stream = false;
    run(&cfg, dir.path(), &closing.url());
    let (rows, _, _) = records(dir.path());
    assert!(
        rows.iter()
            .all(|r| r.status == "ok" && r.connect_ns.is_some()),
        "{rows:?}"
    );
    assert_eq!(closing.connections(), 5);
}

/// A standard HTTP stack (hyper) streaming SSE in chunked frames, as real servers do.
#[test]
fn streams_from_a_hyper_server() {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(8);
                    tokio::spawn(async move {
                        for i in 0..4 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            let ev = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"h{i}\"}}}}]}}\n\n");
                            let _ = tx.send(Ok(Frame::data(Bytes::from(ev)))).await;
                        }
                        let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n")))).await;
                    });
                    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) }));
                    Ok::<_, std::convert::Infallible>(hyper::Response::builder().header("content-type", "text/event-stream").body(body).unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(s), svc).await;
            });
        }
    });
    let dir = run_dir();
    write_workload(dir.path(), None, evenly(6, 5.0, 4));
    run(&config(), dir.path(), &format!("http://{addr}"));
    let (rows, _, _) = records(dir.path());
    for r in &rows {
        assert_eq!(r.status, "ok", "{r:?}");
        assert_eq!(r.chunk_ns.len(), 4);
        let gaps: Vec<i64> = r.chunk_ns.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g > 5_000_000),
            "each event arrives on its own: {gaps:?}"
        );
    }
}

#[test]
fn an_empty_workload_is_bad_input_and_writes_nothing() {
    use bench_types::StageError;
    let dir = run_dir();
    write_workload(dir.path(), None, vec![]);
    let opts = bench_client::RunOptions {
        base_url: format!("http://127.0.0.1:{}", bench_testkit::closed_port()),
        ..Default::default()
    };
    let e = bench_client::run(&config(), dir.path(), &opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("workload.jsonl: no requests"), "{e}");
    assert!(!dir.path().join("requests.parquet").exists());
}

#[test]
fn bad_workload_is_a_usage_error_naming_the_line() {
    use bench_types::StageError;
    let dir = run_dir();
    std::fs::write(
        dir.path().join("workload.jsonl"),
        "{\"timestamp\": 0, \"requests\": [{\"prompt\": \"a\"}]}\n{\"timestamp\": \"soon\"}\n",
    )
    .unwrap();
    let opts = bench_client::RunOptions {
        base_url: "http://127.0.0.1:1".into(),
        ..Default::default()
    };
    let e = bench_client::run(&config(), dir.path(), &opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("workload.jsonl:2:"), "{e}");
    let e = bench_client::run(&config(), &dir.path().join("missing"), &opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("missing/workload.jsonl"), "{e}");
    // A bad endpoint is a usage error too.
    write_workload(dir.path(), None, evenly(1, 1.0, 1));
    let opts = bench_client::RunOptions {
        base_url: "localhost:8000".into(),
        ..Default::default()
    };
    let e = bench_client::run(&config(), dir.path(), &opts).unwrap_err();
    assert_eq!(
        (e.exit_code(), e.to_string()),
        (
            2,
            "client.endpoint: `localhost:8000` is not an http:// or https:// URL".to_string()
        )
    );
}
