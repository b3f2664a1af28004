//! The API key never reaches the records, even when a server echoes the request head in its
//! error body.
//!
//! The key must come from a real environment variable (client.api_key_env), and setting one in
//! this process would race with the other test threads reading the environment: the test
//! re-runs this binary with the variable set, and `echo_child` does the work there (and nothing
//! in a normal test run).

use std::process::{Command, Stdio};

use crate::common::*;
use crate::faults::prompt_of;
use bench_config::client::Transport;
use bench_testkit::{Reply, TestServer};

const VAR: &str = "BENCH_CLIENT_SECRETS_TEST_KEY";
const KEY: &str = "sk-secrets-5e0a77c2d91f";
const CHILD: &str = "BENCH_CLIENT_SECRETS_CHILD";

/// The child side: both transports against a server that echoes the request head.
#[test]
fn echo_child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    assert_eq!(std::env::var(VAR).as_deref(), Ok(KEY));
    let server = TestServer::start(|s| match prompt_of(s).as_str() {
        "json" => Reply::echo_head(500, s),
        _ => Reply::echo_head_text(400, s),
    });
    for transport in [Transport::Native, Transport::Reqwest] {
        let dir = run_dir();
        write_workload(
            dir.path(),
            None,
            vec![(0.0, vec![req("json", 2)]), (10.0, vec![req("text", 2)])],
        );
        let mut cfg = config();
        cfg.client.api_key_env = Some(VAR.into());
        cfg.client.transport = transport;
        cfg.client.write_aibrix_output = true;
        run(&cfg, dir.path(), &server.url());
        let (rows, _, _) = records(dir.path());
        assert_eq!(
            rows.iter()
                .map(|r| (r.status.as_str(), r.http_status))
                .collect::<Vec<_>>(),
            [("http_error", Some(500)), ("http_error", Some(400))],
            "{transport:?}"
        );
        let e = rows[0].error.as_deref().unwrap();
        assert!(
            e.contains("authorization: <redacted>") && !e.contains("sk-"),
            "{transport:?}: {e}"
        );
        for r in &rows {
            for text in [&r.error, &r.note].into_iter().flatten() {
                for piece in KEY.as_bytes().windows(8) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    assert!(
                        !text.contains(piece),
                        "{transport:?}: {piece:?} in {text:?}"
                    );
                }
            }
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                memchr::memmem::find(&bytes, KEY.as_bytes()).is_none(),
                "{transport:?}: the API key is in {}",
                p.display()
            );
        }
    }
    // The server did see it: it was sent.
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.header("authorization") == Some(&*format!("Bearer {KEY}")))
    );
}

#[test]
fn api_key_echoed_by_the_server_is_redacted() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "secrets::echo_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(VAR, KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child ran nothing: {text}");
}
