//! Streamed chunks parsed per second, on one core: the SSE parser alone, and the whole
//! response path (chunked transfer decoding + SSE + JSON + text and instants), on vLLM-shaped
//! chat chunks fed in 16 KiB reads; the same through the shipped `openai-chat` template
//! (`client.api: template`), whose reading must cost about what the built-in one does.
//!
//! `cargo bench -p bench-client --bench sse`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bench_client::http::Sink;
use bench_client::http::chunked::ChunkedDecoder;
use bench_client::protocol::{Collector, Template};
use bench_client::sse::{Event, SseParser};
use bench_config::client::Api;

fn vllm_chunk(i: usize) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-3f2a9b7c1d\",\"object\":\"chat.completion.chunk\",\"created\":1733000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    )
}

fn time<F: FnMut()>(label: &str, events: usize, bytes: usize, mut f: F) {
    // Repeat until at least 1 s has been measured.
    let mut iters = 0u32;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        f();
        iters += 1;
    }
    let dt = t0.elapsed().as_secs_f64();
    let per_s = events as f64 * iters as f64 / dt;
    let mb = bytes as f64 * iters as f64 / dt / 1e6;
    println!(
        "{label:<48} {:>10.2} M chunks/s  {:>7.0} MB/s  ({:.0} ns per chunk)",
        per_s / 1e6,
        mb,
        1e9 / per_s
    );
}

fn main() {
    // `cargo test --all-targets` runs this whole (it takes well under a second) as a check.
    let n = 100_000;
    let sse: String = (0..n).map(vllm_chunk).collect();
    let sse = sse.as_bytes();
    // The same stream in HTTP chunked framing, one HTTP chunk per event (as vLLM sends).
    let mut framed = Vec::with_capacity(sse.len() + n * 8);
    for i in 0..n {
        let ev = vllm_chunk(i);
        framed.extend_from_slice(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    println!(
        "sse: {n} vLLM-shaped chat chunks of ~{} bytes, fed in 16 KiB reads",
        sse.len() / n
    );

    time("SSE framing only (SseParser)", n, sse.len(), || {
        let mut p = SseParser::new();
        let mut count = 0usize;
        for part in sse.chunks(16 * 1024) {
            p.feed(part, &mut |e: Event<'_>| {
                count += e.data.len();
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        black_box(count);
    });

    time(
        "chunked + SSE + JSON + text/instants (Collector)",
        n,
        framed.len(),
        || {
            let base = Instant::now();
            let mut c = Collector::new(Api::OpenaiChat, true, base);
            c.head(200, base);
            let mut d = ChunkedDecoder::default();
            for part in framed.chunks(16 * 1024) {
                let at = Instant::now();
                d.decode(part, |b| c.data(b, at)).unwrap();
            }
            assert_eq!(c.chunks.len(), n);
            black_box(c.content.len());
        },
    );

    let mut cfg = bench_config::ClientConfig {
        api: Api::Template,
        ..Default::default()
    };
    cfg.template = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/templates/openai-chat.yaml")
            .display()
            .to_string(),
    );
    let tpl = std::sync::Arc::new(
        Template::for_config(&cfg)
            .expect("the shipped template")
            .expect("a template"),
    );
    time(
        "the same through config/templates/openai-chat.yaml",
        n,
        framed.len(),
        || {
            let base = Instant::now();
            let mut c = Collector::new(Api::Template, true, base).with_template(Some(tpl.clone()));
            c.head(200, base);
            let mut d = ChunkedDecoder::default();
            for part in framed.chunks(16 * 1024) {
                let at = Instant::now();
                d.decode(part, |b| c.data(b, at)).unwrap();
            }
            assert_eq!(c.chunks.len(), n);
            black_box(c.content.len());
        },
    );
}
