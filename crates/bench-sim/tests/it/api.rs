//! API conformance: OpenAI chat and completions (streamed and not), TGI, /v1/models, /health,
//! /metrics, errors, output lengths, prefix-cache reuse reported in usage, determinism.

use crate::common::*;
use bench_config::SimConfig;
use bench_text::TextGen;
use serde_json::{Value, json};

fn two_messages() -> Value {
    json!([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Explain how a continuous batching scheduler works, briefly."}
    ])
}

fn prompt_tokens_of(texts: &[&str]) -> u64 {
    let t = tok();
    texts.iter().map(|s| t.count(s) as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_chunks_usage_and_done() {
    let sim = start(&zero());
    let c = client();
    let body = json!({
        "model": "sim-model", "messages": two_messages(), "max_tokens": 20, "ignore_eos": true,
        "stream": true, "stream_options": {"include_usage": true}
    });
    let (status, text) = post(&c, &sim.base_url(), "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    let data = sse_data(&text);
    // role chunk + 20 token chunks + usage chunk + [DONE]
    assert_eq!(data.len(), 23, "{text}");
    assert_eq!(data.last().unwrap(), "[DONE]");
    let evs: Vec<Value> = data[..22].iter().map(|d| json(d)).collect();
    let id = evs[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("chatcmpl-"));
    for e in &evs {
        assert_eq!(e["id"], id.as_str());
        assert_eq!(e["object"], "chat.completion.chunk");
        assert_eq!(e["model"], "sim-model");
    }
    assert_eq!(
        evs[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let t = tok();
    let mut reply = String::new();
    for (k, e) in evs[1..21].iter().enumerate() {
        let piece = e["choices"][0]["delta"]["content"].as_str().unwrap();
        assert_eq!(t.count(piece), 1, "chunk {k} is one token: {piece:?}");
        reply.push_str(piece);
        let fin = &e["choices"][0]["finish_reason"];
        if k < 19 {
            assert!(fin.is_null())
        } else {
            assert_eq!(fin, "length")
        }
    }
    assert_eq!(
        t.count(&reply),
        20,
        "the joined reply counts 20 tokens: {reply:?}"
    );
    let u = &evs[21];
    assert_eq!(u["choices"], json!([]));
    let want_prompt = prompt_tokens_of(&[
        "You are a helpful assistant.",
        "Explain how a continuous batching scheduler works, briefly.",
    ]);
    assert_eq!(u["usage"]["prompt_tokens"], want_prompt);
    assert_eq!(u["usage"]["completion_tokens"], 20);
    assert_eq!(u["usage"]["total_tokens"], want_prompt + 20);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_non_stream_and_without_usage_option() {
    let sim = start(&zero());
    let c = client();
    let body = json!({"model": "sim-model", "messages": two_messages(), "max_completion_tokens": 33, "ignore_eos": true});
    let (status, text) = post(&c, &sim.base_url(), "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    let v = json(&text);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(tok().count(content), 33);
    assert_eq!(v["usage"]["completion_tokens"], 33);
    // Streamed without stream_options: no usage chunk, still [DONE].
    let body =
        json!({"messages": two_messages(), "max_tokens": 5, "ignore_eos": true, "stream": true});
    let (_, text) = post(&c, &sim.base_url(), "/v1/chat/completions", &body).await;
    let data = sse_data(&text);
    assert_eq!(data.len(), 1 + 5 + 1, "{text}");
    assert!(!text.contains("\"usage\""));
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_stream_and_non_stream() {
    let sim = start(&zero());
    let c = client();
    let prompt = "The quick brown fox jumps over the lazy dog.";
    let body = json!({"model": "sim-model", "prompt": prompt, "max_tokens": 12, "ignore_eos": true, "stream": true,
                      "stream_options": {"include_usage": true}});
    let (status, text) = post(&c, &sim.base_url(), "/v1/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    let data = sse_data(&text);
    assert_eq!(data.len(), 12 + 2, "no role chunk for completions: {text}");
    let evs: Vec<Value> = data[..13].iter().map(|d| json(d)).collect();
    assert!(evs.iter().all(|e| e["object"] == "text_completion"));
    let reply: String = evs[..12]
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tok().count(&reply), 12);
    assert_eq!(evs[11]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        evs[12]["usage"]["prompt_tokens"],
        tok().count(prompt) as u64
    );
    // Non-streamed; max_tokens absent: vLLM's completions default of 16.
    let body = json!({"prompt": prompt, "ignore_eos": true});
    let (status, text) = post(&c, &sim.base_url(), "/v1/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    let v = json(&text);
    assert_eq!(v["usage"]["completion_tokens"], 16);
    assert_eq!(tok().count(v["choices"][0]["text"].as_str().unwrap()), 16);
    // Token-id prompts count as given.
    let body = json!({"prompt": [1, 2, 3, 4, 5], "max_tokens": 2, "ignore_eos": true});
    let (_, text) = post(&c, &sim.base_url(), "/v1/completions", &body).await;
    assert_eq!(json(&text)["usage"]["prompt_tokens"], 5);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_length_rules_min_tokens_ignore_eos_and_natural_stop() {
    let cfg = SimConfig {
        eos_mean_tokens: 6.0,
        ..zero()
    };
    let sim = start(&cfg);
    let c = client();
    let mut stops = 0;
    for i in 0..30 {
        let p = format!("Question number {i} about the scheduler.");
        // Natural EOS: mean 6, capped at 50.
        let body =
            json!({"messages": [{"role": "user", "content": p}], "max_tokens": 50, "seed": i});
        let v = json(
            &post(&c, &sim.base_url(), "/v1/chat/completions", &body)
                .await
                .1,
        );
        let n = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((1..=50).contains(&n));
        let fin = v["choices"][0]["finish_reason"].as_str().unwrap();
        assert_eq!(fin, if n == 50 { "length" } else { "stop" });
        stops += (fin == "stop") as u32;
        // Same request again: same length and text (a pure function of seed and prompt).
        let again = json(
            &post(&c, &sim.base_url(), "/v1/chat/completions", &body)
                .await
                .1,
        );
        assert_eq!(
            again["choices"][0]["message"]["content"],
            v["choices"][0]["message"]["content"]
        );
        // min_tokens raises the floor.
        let body = json!({"messages": [{"role": "user", "content": p}], "max_tokens": 50, "min_tokens": 30, "seed": i});
        let n = json(
            &post(&c, &sim.base_url(), "/v1/chat/completions", &body)
                .await
                .1,
        )["usage"]["completion_tokens"]
            .as_u64()
            .unwrap();
        assert!((30..=50).contains(&n), "{n}");
        // min_tokens == max_tokens forces the length (what the client's force_output_length sends).
        let body = json!({"messages": [{"role": "user", "content": p}], "max_tokens": 25, "min_tokens": 25, "seed": i});
        let v = json(
            &post(&c, &sim.base_url(), "/v1/chat/completions", &body)
                .await
                .1,
        );
        assert_eq!(v["usage"]["completion_tokens"], 25);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }
    assert!(
        stops > 20,
        "with mean 6 most replies stop before 50 ({stops}/30)"
    );
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_parts_and_images_count_tokens() {
    let sim = start(&SimConfig {
        image_tokens: 100,
        ..zero()
    });
    let c = client();
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}}
    ]}], "max_tokens": 3, "ignore_eos": true});
    let (status, text) = post(&c, &sim.base_url(), "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        json(&text)["usage"]["prompt_tokens"],
        tok().count("What is in this image?") as u64 + 100
    );
    let body = json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]});
    let (status, text) = post(&c, &sim.base_url(), "/v1/chat/completions", &body).await;
    assert_eq!(status, 400);
    assert!(text.contains("input_audio"), "{text}");
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_metrics_move() {
    let sim = start(&zero());
    let c = client();
    let base = sim.base_url();
    let (s, t) = get(&c, &base, "/v1/models").await;
    assert_eq!(s, 200);
    let v = json(&t);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "sim-model");
    assert_eq!(get(&c, &base, "/health").await.0, 200);
    let before = metrics(&c, &base).await;
    for name in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
    ] {
        assert_eq!(metric(&before, name, ""), 0.0);
    }
    assert_eq!(
        metric(&before, "vllm:time_to_first_token_seconds_count", ""),
        0.0
    );
    let prompt = "Hello there, how are you today?";
    for _ in 0..3 {
        post(&c, &base, "/v1/chat/completions", &chat(prompt, 7, false)).await;
    }
    let after = metrics(&c, &base).await;
    let p = tok().count(prompt) as f64;
    assert_eq!(metric(&after, "vllm:prompt_tokens_total", ""), 3.0 * p);
    assert_eq!(metric(&after, "vllm:generation_tokens_total", ""), 21.0);
    assert_eq!(
        metric(
            &after,
            "vllm:request_success_total",
            "finished_reason=\"length\""
        ),
        3.0
    );
    assert_eq!(
        metric(&after, "vllm:time_to_first_token_seconds_count", ""),
        3.0
    );
    assert_eq!(
        metric(&after, "vllm:e2e_request_latency_seconds_count", ""),
        3.0
    );
    assert_eq!(
        metric(
            &after,
            "vllm:time_to_first_token_seconds_bucket",
            "le=\"+Inf\""
        ),
        3.0
    );
    assert_eq!(
        metric(&after, "vllm:time_per_output_token_seconds_count", ""),
        18.0
    );
    assert_eq!(
        metric(&after, "vllm:request_queue_time_seconds_count", ""),
        3.0
    );
    assert_eq!(
        metric(&after, "vllm:prefix_cache_queries_total", ""),
        3.0 * p
    );
    assert!(metric(&after, "vllm:num_requests_running", "") == 0.0);
    assert!(
        metric(&after, "vllm:kv_cache_usage_perc", "") == 0.0,
        "blocks are released"
    );
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_openai_shape_and_status() {
    let cfg = SimConfig {
        max_model_len: Some(64),
        ..zero()
    };
    let sim = start(&cfg);
    let c = client();
    let base = sim.base_url();
    let err = |t: &str| {
        json(t)["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error shape: {t}"))
            .to_string()
    };
    let r = c
        .post(format!("{base}/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(err(&r.text().await.unwrap()).contains("invalid request body"));
    let (s, t) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"model": "sim-model"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(err(&t).contains("messages"), "{t}");
    let (s, t) = post(&c, &base, "/v1/completions", &json!({"max_tokens": 3})).await;
    assert_eq!(s, 400);
    assert!(err(&t).contains("prompt"), "{t}");
    let (s, t) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"model": "gpt-nope", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(json(&t)["error"]["code"], 404);
    assert!(err(&t).contains("`gpt-nope` does not exist"));
    let (s, t) = post(&c, &base, "/v1/chat/completions", &chat("hi", 0, false)).await;
    assert_eq!(s, 400);
    assert!(err(&t).contains("max_tokens"));
    let (s, t) = post(&c, &base, "/v1/chat/completions", &chat("hi", 100, false)).await;
    assert_eq!(s, 400);
    assert!(err(&t).contains("maximum context length is 64"), "{t}");
    let (s, _) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "hi"}], "n": 2}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, t) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "min_tokens": 6}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(err(&t).contains("min_tokens"));
    let (s, _) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = post(
        &c,
        &base,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": ""}]}),
    )
    .await;
    assert_eq!(s, 400, "empty prompt");
    assert_eq!(get(&c, &base, "/nope").await.0, 404);
    assert_eq!(get(&c, &base, "/v1/chat/completions").await.0, 405);
    assert_eq!(post(&c, &base, "/metrics", &json!({})).await.0, 405);
    // TGI routes: validation errors are 422 in TGI's shape.
    let (s, t) = post(
        &c,
        &base,
        "/generate",
        &json!({"inputs": "hi", "parameters": {"max_new_tokens": 0}}),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(json(&t)["error_type"], "validation");
    let (s, _) = post(&c, &base, "/generate", &json!({"parameters": {}})).await;
    assert_eq!(s, 400);
    // The server still works after all that.
    assert_eq!(
        post(&c, &base, "/v1/chat/completions", &chat("hi", 2, false))
            .await
            .0,
        200
    );
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tgi_generate_stream_and_generate() {
    let sim = start(&zero());
    let c = client();
    let base = sim.base_url();
    let inputs = "Write a haiku about queues.";
    let body = json!({"inputs": inputs, "parameters": {"max_new_tokens": 9, "ignore_eos": true}});
    let (s, text) = post(&c, &base, "/generate_stream", &body).await;
    assert_eq!(s, 200, "{text}");
    assert!(
        text.starts_with("data:{"),
        "TGI's SSE has no space after the colon: {text}"
    );
    let evs: Vec<Value> = sse_data(&text).iter().map(|d| json(d)).collect();
    assert_eq!(evs.len(), 9);
    let t = tok();
    let mut reply = String::new();
    for (k, e) in evs.iter().enumerate() {
        let piece = e["token"]["text"].as_str().unwrap();
        assert_eq!(
            t.encode(piece),
            vec![e["token"]["id"].as_u64().unwrap() as u32],
            "token id matches its text"
        );
        assert_eq!(e["token"]["special"], false);
        assert!(e["token"]["logprob"].as_f64().unwrap() <= 0.0);
        reply.push_str(piece);
        if k < 8 {
            assert!(e["generated_text"].is_null() && e["details"].is_null());
        }
    }
    let last = &evs[8];
    assert_eq!(last["generated_text"], reply.as_str());
    assert_eq!(last["details"]["generated_tokens"], 9);
    assert_eq!(last["details"]["finish_reason"], "length");
    assert_eq!(last["details"]["input_length"], t.count(inputs) as u64);
    let (s, text) = post(&c, &base, "/generate", &json!({"inputs": inputs, "parameters": {"max_new_tokens": 9, "ignore_eos": true, "details": true}})).await;
    assert_eq!(s, 200);
    let v = json(&text);
    assert_eq!(
        v["generated_text"],
        reply.as_str(),
        "same prompt, same reply"
    );
    assert_eq!(v["details"]["generated_tokens"], 9);
    assert_eq!(v["details"]["tokens"].as_array().unwrap().len(), 9);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_cache_reuse_across_shared_blocks_and_sessions() {
    let sim = start(&zero());
    let c = client();
    let base = sim.base_url();
    let tk = tok();
    let g = TextGen::new(&tk).unwrap();
    // Mooncake-style prompts from shared 512-token blocks: [1,2,3,4] then [1,2,3,9].
    let mut a = String::new();
    g.blocks_prompt(7, &[1, 2, 3, 4], 512, 2048, &mut a);
    let mut b = String::new();
    g.blocks_prompt(7, &[1, 2, 3, 9], 512, 2048, &mut b);
    let cached = |t: &str| {
        json(t)["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
    };
    let (_, t) = post(
        &c,
        &base,
        "/v1/completions",
        &json!({"prompt": a, "max_tokens": 1}),
    )
    .await;
    assert_eq!(cached(&t), 0);
    let (_, t) = post(
        &c,
        &base,
        "/v1/completions",
        &json!({"prompt": b, "max_tokens": 1}),
    )
    .await;
    assert_eq!(json(&t)["usage"]["prompt_tokens"], 2048);
    assert_eq!(cached(&t), 3 * 512);
    // A session: turn 2 carries turn 1's prompt and reply; both are cached.
    let p1 = "Tell me about the history of the printing press and its effect on literacy.";
    let (_, t) = post(&c, &base, "/v1/chat/completions", &chat(p1, 60, false)).await;
    let reply = json(&t)["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let turn2 = json!({"messages": [
        {"role": "user", "content": p1}, {"role": "assistant", "content": reply},
        {"role": "user", "content": "And what about newspapers?"}], "max_tokens": 2, "ignore_eos": true});
    let (_, t) = post(&c, &base, "/v1/chat/completions", &turn2).await;
    let history = (tk.count(p1) + 60) as u64;
    // Every full block of the history except the one holding the last reply token's KV.
    assert_eq!(cached(&t), (history - 1) / 16 * 16, "{t}");
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_replies_across_instances() {
    let cfg = SimConfig {
        eos_mean_tokens: 20.0,
        ..zero()
    };
    let run = |seed: u64| {
        let cfg = cfg.clone();
        async move {
            let sim = start_seeded(&cfg, seed);
            let c = client();
            let mut out = Vec::new();
            for i in 0..8 {
                let body = json!({"messages": [{"role": "user", "content": format!("Prompt {i}: describe a garden.")}], "max_tokens": 200});
                let v = json(
                    &post(&c, &sim.base_url(), "/v1/chat/completions", &body)
                        .await
                        .1,
                );
                out.push(
                    v["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            sim.shutdown();
            out
        }
    };
    let a = run(1).await;
    let b = run(1).await;
    let c = run(2).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let lens: Vec<usize> = a.iter().map(|s| tok().count(s)).collect();
    assert!(
        lens.iter().any(|&l| l != lens[0]),
        "natural lengths vary: {lens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_aborts_the_request() {
    // 5 ms steps: a 1000-token reply takes 5 s, so it is still running when the client leaves.
    let cfg = SimConfig {
        step_base_us: Some(5000.0),
        ..SimConfig::default()
    };
    let sim = start(&cfg);
    let c = client();
    let base = sim.base_url();
    let r = c
        .post(format!("{base}/v1/chat/completions"))
        .body(chat("Go on and on.", 1000, true).to_string())
        .send()
        .await
        .unwrap();
    let mut s = r.bytes_stream();
    use futures_util::StreamExt;
    let mut seen = String::new();
    while !seen[..seen.rfind("\n\n").map_or(0, |i| i + 2)]
        .split("\n\n")
        .any(has_content)
    {
        seen.push_str(std::str::from_utf8(&s.next().await.unwrap().unwrap()).unwrap());
    }
    let m = metrics(&c, &base).await;
    assert_eq!(metric(&m, "vllm:num_requests_running", ""), 1.0);
    drop(s);
    let t0 = std::time::Instant::now();
    loop {
        let m = metrics(&c, &base).await;
        if metric(
            &m,
            "vllm:request_success_total",
            "finished_reason=\"abort\"",
        ) == 1.0
        {
            assert_eq!(metric(&m, "vllm:num_requests_running", ""), 0.0);
            assert_eq!(metric(&m, "vllm:kv_cache_usage_perc", ""), 0.0);
            break;
        }
        assert!(t0.elapsed().as_secs() < 3, "abort not seen:\n{m}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_for_run_uses_the_run_tokenizer_and_seed() {
    let text =
        "Ünïcödé façade — naïve café, 東京タワー, Привет мир! fn main() { println!(\"{}\", 1); }";
    let cl = bench_text::Tokenizer::load("builtin:cl100k_base")
        .unwrap()
        .count(text);
    let o2 = bench_text::Tokenizer::load("builtin:o200k_base")
        .unwrap()
        .count(text);
    assert_ne!(
        cl, o2,
        "the two tokenizers must disagree on this text for the test to mean anything"
    );
    let mut cfg = bench_config::Config {
        tokenizer: "builtin:o200k_base".parse().unwrap(),
        seed: 5,
        ..Default::default()
    };
    cfg.sim = zero();
    let sim = bench_sim::spawn_for_run(&cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let c = client();
    let (s, t) = post(
        &c,
        &sim.base_url(),
        "/v1/chat/completions",
        &chat(text, 40, false),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let v = json(&t);
    assert_eq!(v["usage"]["prompt_tokens"], o2 as u64);
    let reply = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let o200k = bench_text::Tokenizer::load("builtin:o200k_base").unwrap();
    assert_eq!(o200k.count(&reply), 40);
    // The run's seed is the sim's seed unless sim.seed is set.
    let same = start_seeded(
        &SimConfig {
            tokenizer: Some("builtin:o200k_base".parse().unwrap()),
            ..zero()
        },
        5,
    );
    let (_, t2) = post(
        &c,
        &same.base_url(),
        "/v1/chat/completions",
        &chat(text, 40, false),
    )
    .await;
    assert_eq!(
        json(&t2)["choices"][0]["message"]["content"],
        reply.as_str()
    );
    sim.shutdown();
    same.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn sim_server_runs_inside_the_callers_runtime() {
    let server = bench_sim::SimServer::bind(&zero(), 1, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let c = client();
    assert_eq!(get(&c, &base, "/health").await.0, 200);
    let (s, t) = post(&c, &base, "/v1/chat/completions", &chat("hello", 4, true)).await;
    assert_eq!(s, 200);
    assert_eq!(sse_data(&t).len(), 1 + 4 + 1 + 1);
    stop.send(()).unwrap();
    task.await.unwrap();
    assert!(
        c.get(format!("{base}/health")).send().await.is_err(),
        "stopped serving"
    );
}
