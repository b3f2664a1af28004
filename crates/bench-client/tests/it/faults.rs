//! Fault tests: every broken response ends as exactly one row with the right status and an
//! error text naming the cause, the run completes, and the counts add up — with both
//! transports, which give every case the same status (the few differences reqwest forces are
//! spelled out in `want`).

use std::time::Duration;

use crate::common::*;
use bench_config::client::{Api, Transport};
use bench_testkit::{
    End, Reply, SSE_HEAD, Seen, TestServer, chunk, closed_port, final_events, token_event,
};
use bench_types::RequestStatus;
use bench_types::record::StatusCounts;

pub fn prompt_of(s: &Seen) -> String {
    let v = s.json();
    v["messages"][0]["content"]
        .as_str()
        .or_else(|| v["prompt"].as_str())
        .unwrap_or("")
        .to_string()
}

pub fn stream(tokens: usize, end: End) -> Reply {
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

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Three chat token events, the usage event and `[DONE]`, as one SSE body (no framing).
fn sse_body() -> Vec<u8> {
    let mut b = String::new();
    for i in 0..3 {
        b.push_str(&token_event(Api::OpenaiChat, &format!("t{i} "), i));
    }
    b.push_str(&final_events(Api::OpenaiChat, "", Some((10, 3))));
    b.into_bytes()
}

/// A head delimiting an SSE body by `Content-Length: cl`.
fn head_cl(cl: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {cl}\r\n\r\n")
        .into_bytes()
}

/// A head without framing: the body ends when the server closes.
const HEAD_EOF: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// The client's API key in this file's runs (sent as `Authorization: Bearer`, through
/// client.headers: the same redaction as client.api_key_env, tested in secrets.rs), and a
/// secret header.
const KEY: &str = "sk-faults-9d41c07e55b2";
const HEADER_SECRET: &str = "hs-faults-3b8e1f60";

fn reply(s: &Seen) -> Reply {
    let ev = chunk(&token_event(Api::OpenaiChat, "x", 0));
    let body = sse_body();
    match prompt_of(s).as_str() {
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
        "redirect" => Reply::redirect(302, "http://elsewhere.invalid/v1/chat/completions"),
        "redirect-relative" => Reply::redirect(307, "/v2/chat/completions"),
        "gzip" => Reply::gzip_stream(3),
        "chunk-size-garbage" => Reply::Hang(cat(&[SSE_HEAD, &ev, b"zz\r\n"])),
        "chunk-size-cr" => Reply::Hang(cat(&[SSE_HEAD, &ev, b"5\r\r\nhello\r\n"])),
        "chunk-size-overflow" => Reply::Hang(cat(&[SSE_HEAD, &ev, b"ffffffffffffffff\r\n"])),
        "banner" => Reply::Hang(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
        // A Content-Length 30 bytes short of the body: it ends inside the usage event.
        "body-past-length" => Reply::Hang(cat(&[&head_cl(&(body.len() - 30).to_string()), &body])),
        // A Content-Length 100 bytes past the body, which stops before its end marker.
        "body-short-of-length" => Reply::Raw(cat(&[
            &head_cl(&(body.len() + 100).to_string()),
            &body[..body.len() - 60],
        ])),
        "bad-content-length" => Reply::Hang(cat(&[&head_cl("12abc"), &body])),
        "done-hang" => stream(4, End::DoneHang),
        "done-hang-eof" => Reply::Hang(cat(&[HEAD_EOF, &body])),
        "finish-no-done" => {
            let mut b = String::new();
            for i in 0..2 {
                b.push_str(&token_event(Api::OpenaiChat, &format!("t{i} "), i));
            }
            b.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"end\"},\"finish_reason\":\"length\"}]}\n\n");
            b.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}\n\n");
            Reply::Hang(cat(&[SSE_HEAD, &chunk(&b)]))
        }
        "echo" => Reply::echo_head(500, s),
        "echo-text" => Reply::echo_head_text(502, s),
        "close" => Reply::Close,
        other => panic!("unexpected prompt {other}"),
    }
}

const CASES: [&str; 28] = [
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
    "redirect",
    "redirect-relative",
    "gzip",
    "chunk-size-garbage",
    "chunk-size-cr",
    "chunk-size-overflow",
    "banner",
    "body-past-length",
    "body-short-of-length",
    "bad-content-length",
    "done-hang",
    "done-hang-eof",
    "finish-no-done",
    "echo",
    "echo-text",
    "close",
    "ok",
    "500",
];

/// What a case must end as.
#[derive(Debug, Clone)]
struct Want {
    status: &'static str,
    http: Option<u16>,
    /// Pieces of the error text (none: no error).
    error: &'static [&'static str],
    /// Content chunks kept (None: not checked).
    chunks: Option<usize>,
    /// A piece of the note.
    note: Option<&'static str>,
    /// Ends well before the timeout: the client does not wait for what never comes.
    quick: bool,
}

const fn want(status: &'static str, http: Option<u16>, error: &'static [&'static str]) -> Want {
    Want {
        status,
        http,
        error,
        chunks: None,
        note: None,
        quick: true,
    }
}

/// The expectation of `case` on `transport`.
fn expect(case: &str, transport: Transport) -> Want {
    let native = transport == Transport::Native;
    match case {
        "ok" => Want {
            chunks: Some(4),
            ..want("ok", Some(200), &[])
        },
        "500" => want("http_error", Some(500), &["HTTP 500: engine crashed"]),
        "429" => want("http_error", Some(429), &["HTTP 429: rate limited"]),
        "reset" => Want {
            chunks: Some(3),
            ..want(
                "transport_error",
                Some(200),
                &["connection reset by peer", "3 chunks received"],
            )
        },
        "garbage" | "notsse" => Want {
            chunks: Some(2),
            ..want("transport_error", Some(200), &["malformed SSE"])
        },
        "stall" => Want {
            quick: false,
            ..want("timeout", None, &["timed out after 1 s (no response head)"])
        },
        "stall-mid" => Want {
            chunks: Some(2),
            quick: false,
            ..want(
                "timeout",
                Some(200),
                &["timed out after 1 s (response incomplete)"],
            )
        },
        "cut" => Want {
            chunks: Some(2),
            ..want("transport_error", Some(200), &["end marker"])
        },
        "redirect" => want(
            "http_error",
            Some(302),
            &[
                "HTTP 302 redirect to http://elsewhere.invalid/v1/chat/completions (redirects are not followed)",
            ],
        ),
        "redirect-relative" => want(
            "http_error",
            Some(307),
            &["HTTP 307 redirect to /v2/chat/completions (redirects are not followed)"],
        ),
        "gzip" => want(
            "transport_error",
            Some(200),
            &[
                "the server sent a Content-Encoding: gzip body, which the client does not decode (it asks for identity)",
            ],
        ),
        "chunk-size-garbage" | "chunk-size-cr" => Want {
            chunks: Some(1),
            ..want("transport_error", Some(200), &["bad chunked encoding"])
        },
        // hyper takes any chunk size that fits in 64 bits and waits for that many bytes; reqwest
        // hands over only the decoded data, so it cannot tell.
        "chunk-size-overflow" if !native => Want {
            chunks: Some(1),
            quick: false,
            ..want(
                "timeout",
                Some(200),
                &["timed out after 1 s (response incomplete)"],
            )
        },
        "chunk-size-overflow" => Want {
            chunks: Some(1),
            ..want(
                "transport_error",
                Some(200),
                &["bad chunked encoding: chunk size too large"],
            )
        },
        "banner" if native => want(
            "transport_error",
            None,
            &["response is not HTTP: it starts with \"SSH-2.0-OpenSSH_9.6\""],
        ),
        "banner" => want("transport_error", None, &["response is not HTTP/1.x"]),
        "body-past-length" => Want {
            chunks: Some(3),
            ..want(
                "transport_error",
                Some(200),
                &[
                    "the body ran past its Content-Length (",
                    "malformed SSE data",
                ],
            )
        },
        "body-short-of-length" => Want {
            chunks: Some(3),
            ..want(
                "transport_error",
                Some(200),
                &["connection closed after ", " body bytes"],
            )
        },
        "bad-content-length" if native => want(
            "transport_error",
            Some(200),
            &["malformed response head: invalid Content-Length \"12abc\""],
        ),
        // hyper does not hand over the status of a head it rejects.
        "bad-content-length" => want(
            "transport_error",
            None,
            &["malformed response head: invalid content-length parsed"],
        ),
        "done-hang" => Want {
            chunks: Some(4),
            note: Some("the server did not close the stream after its end marker"),
            ..want("ok", Some(200), &[])
        },
        "done-hang-eof" => Want {
            chunks: Some(3),
            note: Some("the server did not close the stream after its end marker"),
            ..want("ok", Some(200), &[])
        },
        "finish-no-done" => Want {
            chunks: Some(3),
            note: Some("sent its finish_reason but not its end"),
            quick: false,
            ..want("ok", Some(200), &[])
        },
        "echo" => want(
            "http_error",
            Some(500),
            &[
                "HTTP 500: bad request; you sent: POST",
                "authorization: <redacted>",
                "x-api-key: <redacted>",
            ],
        ),
        // Cut at 200 bytes: wherever the cut falls, no piece of a secret shows.
        "echo-text" => want(
            "http_error",
            Some(502),
            &["HTTP 502: POST /v1/chat/completions"],
        ),
        "close" => want(
            "transport_error",
            None,
            &["connection closed before any response"],
        ),
        other => panic!("no expectation for {other}"),
    }
}

fn run_faults(transport: Transport) {
    let server = TestServer::start(reply);
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
    cfg.client
        .headers
        .insert("Authorization".into(), format!("Bearer {KEY}"));
    cfg.client
        .headers
        .insert("X-Api-Key".into(), HEADER_SECRET.into());
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
    assert_eq!(
        meta(&kv, "bench.workload_requests"),
        Some(CASES.len().to_string().as_str())
    );
    let t = format!("{transport:?}");

    let mut counts = std::collections::BTreeMap::new();
    for (r, case) in rows.iter().zip(CASES) {
        let w = expect(case, transport);
        let ctx = format!("{t} {case}: {r:?}");
        assert_eq!(r.status, w.status, "{ctx}");
        assert_eq!(r.http_status, w.http, "{ctx}");
        match &r.error {
            None => assert!(w.error.is_empty(), "{ctx}"),
            Some(e) => {
                assert!(!w.error.is_empty(), "{ctx}");
                for piece in w.error {
                    assert!(e.contains(piece), "{ctx}: the error does not say {piece:?}");
                }
            }
        }
        if let Some(n) = w.chunks {
            assert_eq!(r.chunk_ns.len(), n, "{ctx}");
        }
        match w.note {
            Some(n) => assert!(r.note.as_deref().unwrap_or("").contains(n), "{ctx}"),
            None if !r.retried => assert_eq!(r.note, None, "{ctx}"),
            None => {}
        }
        let took = r.end_ns.unwrap() - r.sent_ns.unwrap();
        if w.quick {
            assert!(took < 500_000_000, "{ctx}: took {took} ns");
        } else if w.status == "timeout" {
            assert!(
                (950_000_000..1_500_000_000).contains(&took),
                "{ctx}: timed out after {took} ns"
            );
        }
        *counts.entry(w.status).or_insert(0u64) += 1;
    }
    let by = |case: &str| &rows[CASES.iter().position(|c| *c == case).unwrap()];
    for r in rows.iter().filter(|r| r.status == "ok") {
        assert_eq!(r.output_text, None);
        assert_eq!(r.usage_prompt_tokens, Some(10), "{t}: {r:?}");
    }
    assert_eq!(by("ok").usage_output_tokens, Some(4));
    let reset = by("reset");
    assert!(reset.first_token_ns.is_some() && reset.end_ns.is_some());

    // A stream that sent its end and then nothing ends at its end marker, not at the timeout.
    for case in ["done-hang", "done-hang-eof"] {
        let r = by(case);
        let after_last = r.end_ns.unwrap() - r.chunk_ns.last().unwrap();
        assert!(after_last < 150_000_000, "{t} {case}: {r:?}");
        assert!(!r.retried);
    }
    // finish_reason, usage, then nothing: ok at the last event after the timeout.
    let fin = by("finish-no-done");
    assert_eq!(
        (fin.finish_reason.as_deref(), fin.usage_output_tokens),
        (Some("length"), Some(3)),
        "{t}"
    );
    assert!(
        fin.end_ns.unwrap() - fin.chunk_ns.last().unwrap() < 150_000_000,
        "{t}: {fin:?}"
    );

    // No secret anywhere in the records, not even 8 bytes of one.
    for r in &rows {
        for text in [&r.error, &r.note, &r.output_text].into_iter().flatten() {
            for secret in [KEY, HEADER_SECRET] {
                for piece in secret.as_bytes().windows(8) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    assert!(
                        !text.contains(piece),
                        "{t}: {piece:?} of a secret in {text:?}"
                    );
                }
            }
        }
    }
    let file = std::fs::read(dir.path().join("requests.parquet")).unwrap();
    for secret in [KEY, HEADER_SECRET] {
        assert!(
            memchr::memmem::find(&file, secret.as_bytes()).is_none(),
            "{t}"
        );
    }

    let expected = StatusCounts::of(&[
        (RequestStatus::Ok, counts["ok"]),
        (RequestStatus::HttpError, counts["http_error"]),
        (RequestStatus::Timeout, counts["timeout"]),
        (RequestStatus::TransportError, counts["transport_error"]),
    ]);
    assert_eq!(out.by_status, expected, "{t}");
    // Each request reached the server once, a retried one twice; redirects were not followed.
    let retried = rows.iter().filter(|r| r.retried).count();
    assert_eq!(
        server.count(),
        CASES.len() + retried,
        "{t}: {retried} retried"
    );
    let close = by("close");
    assert!(
        !close.retried
            || close
                .note
                .as_deref()
                .unwrap_or("")
                .contains("retried once on a new connection"),
        "{t}: {close:?}"
    );
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.path == "/v1/chat/completions"
                && s.header("accept-encoding") == Some("identity")),
        "{t}: a redirect was followed, or a compressed body asked for"
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
            let e = r.error.as_deref().unwrap();
            assert!(
                e.starts_with("connect: 127.0.0.1:") && e.to_lowercase().contains("refused"),
                "{transport:?}: {e}"
            );
            assert!(r.sent_ns.is_some() && r.end_ns.is_some() && r.first_byte_ns.is_none());
            assert!(!r.retried);
        }
        assert_eq!(
            out.by_status,
            StatusCounts::of(&[(RequestStatus::TransportError, 5)])
        );
    }
}

/// A TCP connect that never completes (the server's accept queue is full) is reported as such.
#[test]
fn connect_that_never_completes() {
    let server = bench_testkit::Unaccepting::start();
    for transport in [Transport::Native, Transport::Reqwest] {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(2, 10.0, 4));
        let mut cfg = config();
        cfg.client.transport = transport;
        cfg.client.timeout_s = 1.0;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        for r in &rows {
            assert_eq!(
                (r.status.as_str(), r.http_status),
                ("timeout", None),
                "{r:?}"
            );
            // reqwest does not say whether its connect finished.
            let want = match transport {
                Transport::Native => "connect timed out after 1 s",
                _ => "timed out after 1 s (no response head)",
            };
            assert_eq!(r.error.as_deref(), Some(want), "{transport:?}");
        }
    }
}

/// TGI's final event (`generated_text`, `details`), then the chunked body never ends: ok at
/// the final event.
#[test]
fn tgi_final_event_then_nothing() {
    let server = TestServer::start(|_| match Reply::tokens(Api::Tgi, 3) {
        Reply::Stream {
            api,
            tokens,
            ttft,
            interval,
            usage,
            role_chunk,
            precise,
            ..
        } => Reply::Stream {
            api,
            tokens,
            ttft,
            interval,
            usage,
            role_chunk,
            precise,
            end: End::DoneHang,
        },
        r => r,
    });
    for transport in [Transport::Native, Transport::Reqwest] {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(2, 10.0, 3));
        let mut cfg = config();
        cfg.client.api = Api::Tgi;
        cfg.client.transport = transport;
        cfg.client.timeout_s = 2.0;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        for r in &rows {
            assert_eq!(r.status, "ok", "{transport:?}: {r:?}");
            assert_eq!(
                (
                    r.chunk_ns.len(),
                    r.usage_output_tokens,
                    r.finish_reason.as_deref()
                ),
                (3, Some(3), Some("length"))
            );
            assert!(
                r.end_ns.unwrap() - r.sent_ns.unwrap() < 100_000_000,
                "{r:?}"
            );
            assert!(
                r.note
                    .as_deref()
                    .unwrap()
                    .contains("did not close the stream after its end marker")
            );
        }
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
        } else if p == "short" {
            // A Content-Length 10 bytes short of the JSON body.
            let body = "{\"choices\":[{\"message\":{\"content\":\"hello there\"}}]}";
            Reply::Raw(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len() - 10
                )
                .into_bytes(),
            )
        } else {
            Reply::Body {
                status: 200,
                content_type: "application/json",
                body: "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}".into(),
            }
        }
    });
    for transport in [Transport::Native, Transport::Reqwest] {
        let dir = run_dir();
        write_workload(
            dir.path(),
            None,
            vec![(0.0, vec![req("good", 8), req("bad", 8), req("short", 8)])],
        );
        let mut cfg = config();
        cfg.client.stream = false;
        cfg.client.transport = transport;
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
        assert_eq!(rows[2].status, "transport_error", "{transport:?}");
        assert!(
            rows[2].error.as_deref().unwrap().starts_with(
                "the body ran past its Content-Length (41 bytes): the JSON is cut there"
            ),
            "{transport:?}: {:?}",
            rows[2].error
        );
    }
    let body = server.seen()[0].json();
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}
