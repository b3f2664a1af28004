//! Sessions: turn k+1 is sent at max(its scheduled time, end of reply k), with the conversation
//! so far (the prompts and the replies actually received).

use std::time::Duration;

use crate::common::*;
use bench_config::client::Api;
use bench_testkit::{End, Reply, Seen, TestServer};
use bench_types::WorkloadRequest;

/// The reply names the request it answers, so the test can check the history.
fn reply_for(s: &Seen, api: Api) -> Reply {
    Reply::Stream {
        api,
        tokens: vec![format!("reply-{}", s.index), " ok".into()],
        ttft: Duration::from_millis(30),
        interval: Duration::from_millis(5),
        usage: Some((1, 2)),
        role_chunk: false,
        end: End::Done,
        precise: true,
    }
}

fn turn(session: u64, k: u32, text: &str) -> WorkloadRequest {
    WorkloadRequest {
        prompt: Some(text.into()),
        prompt_length: Some(2),
        output_length: Some(2),
        session_id: Some(session),
        turn: Some(k),
        ..Default::default()
    }
}

/// Two sessions of three turns, all scheduled within 10 ms (long before the replies end), plus
/// a plain request: turns go out in order, each after the previous reply, with the history.
#[test]
fn chat_turns_wait_for_the_previous_reply_and_carry_the_history() {
    let server = TestServer::start(|s| reply_for(s, Api::OpenaiChat));
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![
            (0.0, vec![turn(7, 0, "s7 first"), turn(9, 0, "s9 first")]),
            (2.0, vec![turn(7, 1, "s7 second"), req("plain", 2)]),
            (4.0, vec![turn(9, 1, "s9 second")]),
            (6.0, vec![turn(7, 2, "s7 third"), turn(9, 2, "s9 third")]),
        ],
    );
    run(&config(), dir.path(), &server.url());
    let (rows, _, _) = records(dir.path());
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| r.status == "ok"), "{rows:?}");
    let seen = server.seen();
    assert_eq!(seen.len(), 7);

    for sid in [7u64, 9] {
        let mut turns: Vec<_> = rows.iter().filter(|r| r.session_id == Some(sid)).collect();
        turns.sort_by_key(|r| r.turn);
        assert_eq!(
            turns.iter().map(|r| r.turn.unwrap()).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        for w in turns.windows(2) {
            let (prev, next) = (w[0], w[1]);
            assert!(
                next.sent_ns.unwrap() >= prev.end_ns.unwrap(),
                "turn sent before the previous reply ended"
            );
            assert!(
                next.sent_ns.unwrap() - prev.end_ns.unwrap() < 10_000_000,
                "turn not sent right after the reply"
            );
            let rl = next.ready_ns.unwrap() - next.scheduled_ns;
            assert!(
                (0..10_000_000).contains(&rl),
                "ready is the scheduled release, not the reply end: {rl} ns"
            );
        }
        // What the server received for each turn: the history with the replies it actually sent.
        let bodies: Vec<&Seen> = seen
            .iter()
            .filter(|s| {
                s.json()["messages"][0]["content"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("s{sid} "))
            })
            .collect();
        assert_eq!(bodies.len(), 3);
        let mut expect: Vec<serde_json::Value> = Vec::new();
        for (k, (s, text)) in bodies.iter().zip(["first", "second", "third"]).enumerate() {
            expect.push(serde_json::json!({"role": "user", "content": format!("s{sid} {text}")}));
            assert_eq!(
                s.json()["messages"],
                serde_json::Value::Array(expect.clone()),
                "session {sid} turn {k}"
            );
            expect.push(serde_json::json!({"role": "assistant", "content": format!("reply-{} ok", s.index)}));
        }
        // prompt_tokens counts the whole conversation sent: own prompt + earlier turns' prompts and replies.
        let reply_tokens = turns[0].output_tokens.unwrap();
        assert_eq!(turns[0].prompt_tokens, Some(2));
        assert_eq!(turns[1].prompt_tokens, Some(2 + 2 + reply_tokens));
    }
    let plain = rows.iter().find(|r| r.session_id.is_none()).unwrap();
    assert!(
        plain.sent_ns.unwrap() - plain.scheduled_ns < 10_000_000,
        "plain requests are not held by sessions"
    );
}

/// Completions API: the history is concatenated into the prompt.
#[test]
fn completions_turns_concatenate_the_history() {
    let server = TestServer::start(|s| reply_for(s, Api::OpenaiCompletions));
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![
            (0.0, vec![turn(1, 0, "Hello.")]),
            (1.0, vec![turn(1, 1, "And then?")]),
        ],
    );
    let mut cfg = config();
    cfg.client.api = Api::OpenaiCompletions;
    run(&cfg, dir.path(), &server.url());
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/completions");
    assert_eq!(
        seen[1].json()["prompt"],
        "Hello.\n\nreply-0 ok\n\nAnd then?"
    );
}

/// A failed turn is left out of the history; the session goes on.
#[test]
fn a_failed_turn_is_not_in_the_history() {
    let server = TestServer::start(|s| {
        if s.index == 0 {
            Reply::Body {
                status: 503,
                content_type: "application/json",
                body: "{\"error\":\"busy\"}".into(),
            }
        } else {
            reply_for(s, Api::OpenaiChat)
        }
    });
    let dir = run_dir();
    write_workload(
        dir.path(),
        None,
        vec![
            (0.0, vec![turn(3, 0, "one")]),
            (1.0, vec![turn(3, 1, "two")]),
        ],
    );
    run(&config(), dir.path(), &server.url());
    let (rows, _, _) = records(dir.path());
    assert_eq!(
        (rows[0].status.as_str(), rows[1].status.as_str()),
        ("http_error", "ok")
    );
    assert_eq!(
        server.seen()[1].json()["messages"],
        serde_json::json!([{"role": "user", "content": "two"}])
    );
}
