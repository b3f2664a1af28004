//! Fault tests: every broken response ends as exactly one row with the right status, the run
//! completes, and the counts add up — with both transports.

use std::time::Duration;

use crate::common::*;
use bench_config::client::{Api, Transport};
use bench_testkit::{End, Reply, Seen, TestServer, closed_port};
use bench_types::RequestStatus;
use bench_types::record::StatusCounts;

fn prompt_of(s: &Seen) -> String {
    let v = s.json();
    v["messages"][0]["content"]
        .as_str()
        .or_else(|| v["prompt"].as_str())
        .unwrap_or("")
        .to_string()
}

fn stream(tokens: usize, end: End) -> Reply {
    match Reply::tokens(Api::OpenaiChat, tokens) {
        Reply::Stream {
            api, tokens, usage, ..
        } => Reply::Stream {
            api,
            tokens,
            ttft: Duration::from_millis(5),
            interval: Duration::from_millis(2),
            usage,
            role_chunk: true,
            end,
            precise: true,
        },
        r => r,
    }
}

fn fault_server() -> TestServer {
    TestServer::start(|s| match prompt_of(s).as_str() {
        "ok" => stream(4, End::Done),
        "500" => Reply::Body {
            status: 500,
            content_type: "application/json",
            body: r#"{"error":{"message":"engine crashed"}}"#.into(),
        },
        "429" => Reply::Body {
            status: 429,
            content_type: "application/json",
            body: r#"{"error":{"message":"rate limited"}}"#.into(),
        },
        "reset" => stream(3, End::Reset),
        "garbage" => stream(2, End::Garbage("data: {broken".into())),
        "notsse" => stream(2, End::Garbage("<html>oops</html>".into())),
        "stall" => Reply::Stall,
        "stall-mid" => stream(2, End::Stall),
        "cut" => stream(2, End::Cut),
        other => panic!("unexpected prompt {other}"),
    })
}

const CASES: [&str; 10] = [
    "ok",
    "500",
    "429",
    "reset",
    "garbage",
    "notsse",
    "stall",
    "stall-mid",
    "ok",
    "cut",
];

fn run_faults(transport: Transport) {
    let server = fault_server();
    let dir = run_dir();
    let entries = CASES
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64 * 20.0, vec![req(p, 4)]))
        .collect();
    write_workload(dir.path(), None, entries);
    let mut cfg = config();
    cfg.client.timeout_s = 1.0;
    cfg.client.transport = transport;
    let out = run(&cfg, dir.path(), &server.url());
    assert!(!out.interrupted);
    let (rows, warm, kv) = records(dir.path());
    assert!(warm.is_empty());
    assert_eq!(rows.len(), CASES.len(), "one row per workload request");
    assert_eq!(
        rows.iter().map(|r| r.request_id).collect::<Vec<_>>(),
        (0..CASES.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(meta(&kv, "bench.complete"), Some("true"));
    assert_eq!(meta(&kv, "bench.workload_requests"), Some("10"));
    let by = |i: usize| &rows[i];
    let t = format!("{transport:?}");

    for i in [0, 8] {
        assert_eq!(by(i).status, "ok", "{t}: {:?}", by(i));
        assert_eq!(by(i).chunk_ns.len(), 4);
        assert_eq!(by(i).output_text, None);
        assert_eq!(
            (by(i).usage_prompt_tokens, by(i).usage_output_tokens),
            (Some(10), Some(4))
        );
    }
    assert_eq!(
        (by(1).status.as_str(), by(1).http_status),
        ("http_error", Some(500)),
        "{t}"
    );
    assert!(
        by(1).error.as_deref().unwrap().contains("engine crashed"),
        "{t}: {:?}",
        by(1).error
    );
    assert_eq!(
        (by(2).status.as_str(), by(2).http_status),
        ("http_error", Some(429)),
        "{t}"
    );
    assert!(
        by(2).error.as_deref().unwrap().contains("rate limited"),
        "{t}"
    );

    let reset = by(3);
    assert_eq!(reset.status, "transport_error", "{t}: {reset:?}");
    assert_eq!(reset.http_status, Some(200));
    assert_eq!(
        reset.chunk_ns.len(),
        3,
        "{t}: chunks before the reset are kept"
    );
    assert!(reset.first_token_ns.is_some() && reset.end_ns.is_some());

    for i in [4, 5] {
        assert_eq!(by(i).status, "transport_error", "{t}: {:?}", by(i));
        assert!(
            by(i).error.as_deref().unwrap().contains("malformed SSE"),
            "{t}: {:?}",
            by(i).error
        );
        assert_eq!(by(i).chunk_ns.len(), 2);
    }

    let stall = by(6);
    assert_eq!(stall.status, "timeout", "{t}: {stall:?}");
    assert_eq!(stall.http_status, None);
    let waited = stall.end_ns.unwrap() - stall.sent_ns.unwrap();
    assert!(
        (950_000_000..1_500_000_000).contains(&waited),
        "{t}: timed out after {waited} ns"
    );
    let mid = by(7);
    assert_eq!(
        (mid.status.as_str(), mid.http_status, mid.chunk_ns.len()),
        ("timeout", Some(200), 2),
        "{t}: {mid:?}"
    );

    let cut = by(9);
    assert_eq!(
        (cut.status.as_str(), cut.http_status, cut.chunk_ns.len()),
        ("transport_error", Some(200), 2),
        "{t}: {cut:?}"
    );
    assert!(
        cut.error.as_deref().unwrap().contains("end marker"),
        "{t}: {:?}",
        cut.error
    );

    assert_eq!(
        out.by_status,
        StatusCounts::of(&[
            (RequestStatus::Ok, 2),
            (RequestStatus::HttpError, 2),
            (RequestStatus::Timeout, 2),
            (RequestStatus::TransportError, 4),
        ]),
        "{t}"
    );
    assert_eq!(
        server.count(),
        CASES.len(),
        "{t}: each request reached the server once"
    );
}

#[test]
fn every_fault_is_one_row_with_its_status_native() {
    run_faults(Transport::Native);
}

#[test]
fn every_fault_is_one_row_with_its_status_reqwest() {
    run_faults(Transport::Reqwest);
}

#[test]
fn server_not_listening() {
    for transport in [Transport::Native, Transport::Reqwest] {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(5, 10.0, 4));
        let mut cfg = config();
        cfg.client.transport = transport;
        let out = run(
            &cfg,
            dir.path(),
            &format!("http://127.0.0.1:{}", closed_port()),
        );
        let (rows, _, _) = records(dir.path());
        assert_eq!(rows.len(), 5);
        for r in &rows {
            assert_eq!(r.status, "transport_error", "{transport:?}: {r:?}");
            assert!(
                r.error
                    .as_deref()
                    .unwrap()
                    .to_lowercase()
                    .contains("connect"),
                "{transport:?}: {:?}",
                r.error
            );
            assert!(r.sent_ns.is_some() && r.end_ns.is_some() && r.first_byte_ns.is_none());
        }
        assert_eq!(
            out.by_status,
            StatusCounts::of(&[(RequestStatus::TransportError, 5)])
        );
    }
}

#[test]
fn non_streaming_and_errors_in_a_200_body() {
    let server = TestServer::start(|s| {
        let p = prompt_of(s);
        if p == "bad" {
            Reply::Body {
                status: 200,
                content_type: "application/json",
                body: "{\"object\":\"error\",\"message\":\"context too long\"}".into(),
            }
        } else {
            Reply::Body {
                status: 200,
                content_type: "application/json",
                body: "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}".into(),
            }
        }
    });
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![(0.0, vec![req("good", 8), req("bad", 8)])],
    );
    let mut cfg = config();
    cfg.client.stream = false;
    run(&cfg, dir.path(), &server.url());
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows[0].status, "ok");
    assert!(!rows[0].stream);
    assert_eq!(
        (rows[0].first_token_ns, rows[0].chunk_ns.len()),
        (None, 0),
        "no token timing without streaming"
    );
    assert_eq!(
        (
            rows[0].output_tokens,
            rows[0].usage_output_tokens,
            rows[0].finish_reason.as_deref()
        ),
        (Some(2), Some(2), Some("stop"))
    );
    assert_eq!(rows[1].status, "transport_error");
    assert_eq!(
        rows[1].error.as_deref(),
        Some("server error: context too long")
    );
    let body = server.seen()[0].json();
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}
