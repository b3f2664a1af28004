//! client.max_buffer_mib: the memory all in-flight responses buffer together is bounded.
//! Responses whose buffers would take it past the budget fail; none hangs; every request has
//! its row.

use std::time::Duration;

use crate::common::*;
use bench_config::client::Transport;
use bench_testkit::{Reply, TestServer};

const MIB: usize = 1 << 20;

/// Four requests at once, each answered with 12 MiB that never end (an SSE line without its
/// line end, or a body short of its Content-Length), against a 16 MiB budget: only one can
/// hold its 12 MiB, so the other three fail naming the budget, and that one times out.
fn four_huge_responses(transport: Transport, stream: bool) {
    let server = TestServer::start(move |_| {
        let mut b = if stream {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"".to_vec()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                13 * MIB
            )
            .into_bytes()
        };
        b.resize(b.len() + 12 * MIB, b'a');
        Reply::Hang(b)
    });
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![(0.0, (0..4).map(|i| req(&format!("p{i}"), 4)).collect())],
    );
    let mut cfg = config();
    cfg.client.transport = transport;
    cfg.client.stream = stream;
    cfg.client.timeout_s = 2.0;
    cfg.client.max_buffer_mib = 16;
    let t0 = std::time::Instant::now();
    run(&cfg, dir.path(), &server.url());
    assert!(t0.elapsed() < Duration::from_secs(10), "the run hung");
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows.len(), 4, "one row per request");
    let ctx = format!(
        "{transport:?} stream={stream}: {:?}",
        rows.iter()
            .map(|r| (&r.status, &r.error))
            .collect::<Vec<_>>()
    );
    let over: Vec<_> = rows
        .iter()
        .filter(|r| r.status == "transport_error")
        .collect();
    assert_eq!(over.len(), 3, "{ctx}");
    for r in &over {
        let e = r.error.as_deref().unwrap();
        assert!(
            e.starts_with("response buffers would exceed client.max_buffer_mib = 16 MiB across in-flight requests"),
            "{ctx}"
        );
        assert!(
            r.end_ns.unwrap() - r.sent_ns.unwrap() < 1_000_000_000,
            "{ctx}"
        );
    }
    let timed_out = rows.iter().filter(|r| r.status == "timeout").count();
    assert_eq!(timed_out, 1, "{ctx}");
}

#[test]
fn buffer_budget_bounds_unterminated_sse_lines() {
    for transport in [Transport::Native, Transport::Reqwest] {
        four_huge_responses(transport, true);
    }
}

#[test]
fn buffer_budget_bounds_bodies() {
    for transport in [Transport::Native, Transport::Reqwest] {
        four_huge_responses(transport, false);
    }
}
