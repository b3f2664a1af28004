//! The keep-alive race: a request that meets a kept-alive connection the server has closed
//! (no byte of a response comes back) is sent once more, on a new connection, and recorded as
//! retried — with both transports.

use std::time::Duration;

use crate::common::*;
use bench_config::client::{Api, Transport};
use bench_testkit::{Reply, TestServer};

/// The server closes every connection on its second request, without answering (as when its
/// idle timeout fires just as the request arrives). Three connections are opened at once and
/// kept alive; each of the three later requests meets one of them, closed: it must go again on
/// a new one (another pooled one would be closed the same way). (The native transport keeps
/// the new connection for later requests; reqwest's retry connection is not pooled.)
#[test]
fn request_on_a_closed_kept_alive_connection_is_retried_on_a_new_one() {
    for transport in [Transport::Native, Transport::Reqwest] {
        let server = TestServer::start(|s| {
            if s.conn_request > 0 {
                Reply::Close
            } else {
                Reply::tokens(Api::OpenaiChat, 2)
            }
        });
        let dir = run_dir();
        let mut entries = vec![(0.0, (0..3).map(|i| req(&format!("first {i}"), 2)).collect())];
        entries
            .extend((0..3).map(|i| (100.0 + 50.0 * i as f64, vec![req(&format!("later {i}"), 2)])));
        write_workload(dir.path(), None, entries);
        let mut cfg = config();
        cfg.client.transport = transport;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        let t = format!("{transport:?}: {rows:?}");
        assert!(
            rows.iter()
                .all(|r| r.status == "ok" && r.chunk_ns.len() == 2),
            "{t}"
        );
        assert!(
            rows[..3].iter().all(|r| !r.retried && r.note.is_none()),
            "{t}"
        );
        for r in &rows[3..] {
            assert!(r.retried, "{t}");
            assert!(
                r.note.as_deref().unwrap().starts_with(
                    "retried once on a new connection: connection closed before any response"
                ),
                "{t}"
            );
            if transport == Transport::Native {
                assert!(r.connect_ns.is_some(), "the retry opened a connection: {t}");
            }
        }
        // Each later request arrived twice: on a kept-alive connection, then first on a new one.
        let seen = server.seen();
        assert_eq!(seen.len(), 3 + 2 * 3, "{t}");
        for i in 0..3 {
            let prompt = format!("later {i}");
            let arrivals: Vec<_> = seen
                .iter()
                .filter(|s| crate::faults::prompt_of(s) == prompt)
                .map(|s| s.conn_request)
                .collect();
            assert_eq!(arrivals, [1, 0], "{t}");
        }
    }
}

/// A server that closes each connection 150 ms after its reply, and requests 150 ms apart:
/// requests meet connections being closed. None fails.
#[test]
fn server_closing_idle_connections_after_150_ms() {
    for transport in [Transport::Native, Transport::Reqwest] {
        let server = TestServer::start(|_| {
            Reply::CloseAfter(
                Box::new(Reply::tokens(Api::OpenaiChat, 1)),
                Duration::from_millis(150),
            )
        });
        let dir = run_dir();
        write_workload(dir.path(), None, evenly(16, 150.0, 1));
        let mut cfg = config();
        cfg.client.transport = transport;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        let retried = rows.iter().filter(|r| r.retried).count();
        assert!(
            rows.iter().all(|r| r.status == "ok"),
            "{transport:?}: {:?}",
            rows.iter()
                .map(|r| (&r.status, &r.error, r.retried))
                .collect::<Vec<_>>()
        );
        // a retried request's first attempt met a closed connection: the server may or may not
        // have read it before closing, so it saw each request once or (retried ones) twice
        assert!(
            (16..=16 + retried).contains(&server.count()),
            "{transport:?}: the server saw {} requests, {retried} retried",
            server.count()
        );
    }
}
