//! Timing tests: recorded token instants against a server with exact timing, the open-loop
//! schedule (small lag, no drift, independent of the server), time_scale, the concurrency cap,
//! and the closed loop.
//!
//! Each bound is a quiet-machine bound (p99 within it); on an attempt during which the host
//! measurably took the CPU away, p50 must be within half of it, p90 within it and every value
//! within 10x (see `common::timing_attempts`).

#[path = "it/common/mod.rs"]
mod common;

use std::time::Duration;

use bench_config::client::Api;
use bench_testkit::{End, Reply, TestServer};
use bench_types::{LoopMode, WorkloadHeader};
use common::*;

fn timed(tokens: usize, ttft_ms: u64, interval_ms: u64) -> Reply {
    Reply::Stream {
        api: Api::OpenaiChat,
        tokens: (0..tokens).map(|i| format!(" w{i}")).collect(),
        ttft: Duration::from_millis(ttft_ms),
        interval: Duration::from_millis(interval_ms),
        usage: Some((3, tokens as u32)),
        role_chunk: true,
        end: End::Done,
        precise: true,
    }
}

/// First token T ms after the request arrives, then one every I ms. The recorded TTFT
/// (first_token - sent) and chunk gaps match what the server actually did (its first write
/// after the request arrived, the gaps between its writes) within 1 ms at p99: this measures
/// the client's recording, not the test server's own timer jitter.
#[test]
fn recorded_ttft_and_chunk_gaps_match_the_server_within_1ms_p99() {
    let _serial = serial();
    const T: f64 = 40.0;
    const I: f64 = 8.0;
    let server = TestServer::start(|_| timed(12, T as u64, I as u64));
    timing_attempts(|| {
        let dir = run_dir();
        // 60 requests, 15 ms apart: ~9 streams overlap at any time.
        write_workload(dir.path(), None, evenly(60, 15.0, 12));
        run(&config(), dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        assert_eq!(rows.len(), 60);
        // The server's log of this attempt, by prompt (later attempts replace earlier ones).
        let seen: std::collections::HashMap<String, _> = server
            .seen()
            .into_iter()
            .map(|s| {
                (
                    s.json()["messages"][0]["content"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    s,
                )
            })
            .collect();
        let mut ttft_err = Vec::new();
        let mut gap_err = Vec::new();
        for r in &rows {
            assert_eq!(r.status, "ok", "{r:?}");
            assert_eq!(
                r.chunk_ns.len(),
                12,
                "the role-only chunk is not a content chunk"
            );
            let ttft = (r.first_token_ns.unwrap() - r.sent_ns.unwrap()) as f64 / 1e6;
            assert!(
                ttft >= T - 0.05,
                "first token before the server sent it: {ttft} ms"
            );
            assert_eq!(r.first_token_ns, Some(r.chunk_ns[0]));
            assert!(
                r.first_byte_ns.unwrap() < r.first_token_ns.unwrap(),
                "the head arrives before the first token"
            );
            let sv = &seen[&format!("prompt number {}", r.request_id)];
            assert_eq!(sv.token_writes.len(), 12);
            let server_ttft = (sv.token_writes[0] - sv.arrival).as_secs_f64() * 1e3;
            ttft_err.push((ttft - server_ttft).abs());
            for (w, sw) in r.chunk_ns.windows(2).zip(sv.token_writes.windows(2)) {
                let server_gap = (sw[1] - sw[0]).as_secs_f64() * 1e3;
                gap_err.push(((w[1] - w[0]) as f64 / 1e6 - server_gap).abs());
            }
            assert!(r.end_ns.unwrap() >= *r.chunk_ns.last().unwrap());
        }
        if std::env::var("BENCH_DEBUG_TIMING").is_ok() {
            for r in &rows {
                let ttft = (r.first_token_ns.unwrap() - r.sent_ns.unwrap()) as f64 / 1e6;
                let gaps: Vec<String> = r
                    .chunk_ns
                    .windows(2)
                    .map(|w| format!("{:.1}", (w[1] - w[0]) as f64 / 1e6))
                    .collect();
                eprintln!(
                    "req {:>2} sent {:>8.3} ttft {:>7.3} conn {} gaps {}",
                    r.request_id,
                    r.sent_ns.unwrap() as f64 / 1e6,
                    ttft,
                    r.connect_ns.is_some(),
                    gaps.join(" ")
                );
            }
        }
        tail("TTFT |error|", &ttft_err, 1.0).and(tail(
            &format!("chunk gap |error| ({} gaps)", gap_err.len()),
            &gap_err,
            1.0,
        ))
    });
}

/// 800 requests at 2 ms intervals (500 req/s): every send within 1 ms of its schedule at p99,
/// the schedule exactly timestamp x 1e6 ns, and no drift from the first to the last decile.
#[test]
fn open_loop_sends_on_schedule_without_drift() {
    let _serial = serial();
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 4));
    timing_attempts(|| {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(800, 2.0, 4));
        let out = run(&config(), dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        assert_eq!(out.by_status[bench_types::RequestStatus::Ok], 800);
        let mut lags: Vec<f64> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(
                r.scheduled_ns,
                i as i64 * 2_000_000,
                "scheduled is the workload timestamp"
            );
            let lag = r.sent_ns.unwrap() - r.scheduled_ns;
            assert!(lag >= 0, "sent before its time: {lag} ns");
            assert!(r.ready_ns.unwrap() <= r.sent_ns.unwrap());
            lags.push(lag as f64 / 1e6);
        }
        // Drift (relative sleeps adding up) moves the whole last decile: compare medians.
        let first = quantile(&mut lags[..80].to_vec(), 0.5);
        let last = quantile(&mut lags[720..].to_vec(), 0.5);
        tail("dispatch lag", &lags, 1.0).and(Verdict::always(
            (last - first).abs() < 0.5,
            format!("median first decile {first:.3} ms, last decile {last:.3} ms"),
        ))
    });
}

/// A slow server does not slow the arrivals: 40 requests 10 ms apart, each answered after
/// 400 ms, are still sent on time, and the server holds them all at once.
#[test]
fn a_slow_server_does_not_slow_the_arrivals() {
    let _serial = serial();
    let server = TestServer::start(|_| timed(2, 400, 10));
    timing_attempts(|| {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(40, 10.0, 2));
        run(&config(), dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        assert!(rows.iter().all(|r| r.status == "ok"));
        assert!(
            server.max_in_flight() >= 38,
            "in flight at the server: {}",
            server.max_in_flight()
        );
        let lags: Vec<f64> = rows
            .iter()
            .map(|r| (r.sent_ns.unwrap() - r.scheduled_ns) as f64 / 1e6)
            .collect();
        tail("dispatch lag under a slow server", &lags, 1.0)
    });
}

#[test]
fn time_scale_multiplies_timestamps() {
    let _serial = serial();
    let server = TestServer::start(|_| Reply::tokens(Api::OpenaiChat, 1));
    timing_attempts(|| {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(5, 100.0, 1));
        let mut cfg = config();
        cfg.client.time_scale = 0.25;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, kv) = records(dir.path());
        assert_eq!(
            rows.iter().map(|r| r.scheduled_ns).collect::<Vec<_>>(),
            vec![0, 25_000_000, 50_000_000, 75_000_000, 100_000_000]
        );
        assert_eq!(meta(&kv, "bench.time_scale"), Some("0.25"));
        let lags: Vec<f64> = rows
            .iter()
            .map(|r| (r.sent_ns.unwrap() - r.scheduled_ns) as f64 / 1e6)
            .collect();
        assert!(lags.iter().all(|&l| l >= 0.0), "sent early: {lags:?}");
        tail("lag after the scaled times", &lags, 1.0)
    });
}

/// max_concurrency 2: the server never sees more than 2; held requests record their queue
/// delay (sent - ready) while ready stays on schedule.
#[test]
fn concurrency_cap_holds_requests_and_records_the_wait() {
    let _serial = serial();
    let server = TestServer::start(|_| timed(2, 50, 5));
    timing_attempts(|| {
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(10, 5.0, 2));
        let mut cfg = config();
        cfg.client.max_concurrency = Some(2);
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        assert_eq!(server.max_in_flight(), 2);
        let mut ready_lags = Vec::new();
        let mut held = 0;
        for r in &rows {
            assert_eq!(r.status, "ok");
            ready_lags.push((r.ready_ns.unwrap() - r.scheduled_ns) as f64 / 1e6);
            if r.sent_ns.unwrap() - r.ready_ns.unwrap() > 20_000_000 {
                held += 1;
            }
        }
        // Requests 2.. wait for a slot: each pair takes ~55 ms, arrivals come every 5 ms.
        assert!(held >= 7, "{held} requests show a queue delay");
        // A held request is sent when an earlier one ends.
        let ends: Vec<i64> = rows.iter().map(|r| r.end_ns.unwrap()).collect();
        let mut after_end = Vec::new();
        for r in &rows[2..] {
            let sent = r.sent_ns.unwrap();
            let freed = ends.iter().filter(|&&e| e <= sent).max();
            let freed = freed.unwrap_or_else(|| {
                panic!(
                    "request {} sent at {sent} before any slot was freed",
                    r.request_id
                )
            });
            after_end.push((sent - freed) as f64 / 1e6);
        }
        tail("ready after the schedule", &ready_lags, 2.0).and(tail(
            &format!("{held} held; sent after the end that freed a slot"),
            &after_end,
            2.0,
        ))
    });
}

/// Closed loop with concurrency 3: exactly 3 in flight at the server, never more.
#[test]
fn closed_loop_keeps_n_in_flight() {
    let _serial = serial();
    let server = TestServer::start(|_| timed(3, 20, 5));
    timing_attempts(|| {
        let dir = run_dir();
        let header = WorkloadHeader {
            mode: LoopMode::ClosedLoop,
            concurrency: Some(3),
            ..WorkloadHeader::open_loop("concurrency")
        };
        write_workload(
            dir.path(),
            Some(header),
            (0..20)
                .map(|i| (0.0, vec![req(&format!("p{i}"), 3)]))
                .collect(),
        );
        let out = run(&config(), dir.path(), &server.url());
        assert_eq!(out.by_status[bench_types::RequestStatus::Ok], 20);
        assert_eq!(server.max_in_flight(), 3);
        let (rows, _, kv) = records(dir.path());
        assert!(meta(&kv, "bench.mode").unwrap().contains("closed_loop"));
        let mut send_lags = Vec::new();
        for r in &rows {
            assert_eq!(
                r.scheduled_ns,
                r.ready_ns.unwrap(),
                "closed loop: scheduled when a slot frees"
            );
            send_lags.push((r.sent_ns.unwrap() - r.ready_ns.unwrap()) as f64 / 1e6);
        }
        // Twenty 35 ms requests, 3 at a time: about 7 rounds.
        let span = rows.iter().map(|r| r.end_ns.unwrap()).max().unwrap() as f64 / 1e6;
        tail("sent after ready", &send_lags, 1.0).and(Verdict::always(
            (200.0..400.0).contains(&span),
            format!("closed loop took {span:.0} ms"),
        ))
    });
}
