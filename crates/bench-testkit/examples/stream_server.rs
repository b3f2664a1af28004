//! A scripted streaming server for benchmarks and manual tests: every request gets `--tokens`
//! one-token SSE chunks (OpenAI chat format), the first `--ttft-ms` after the request arrived,
//! then one every `--interval-ms` (0/0: all at once, in one write).
//!
//! ```text
//! taskset -c 0 cargo run --release -p bench-client --example stream_server -- --port 8800 --tokens 16
//! ```

use std::time::Duration;

use bench_config::client::Api;
use bench_testkit::{End, Reply, TestServer};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = arg(&args, "--port", 8800) as u16;
    let tokens = arg(&args, "--tokens", 16) as usize;
    let ttft = Duration::from_millis(arg(&args, "--ttft-ms", 0));
    let interval = Duration::from_millis(arg(&args, "--interval-ms", 0));
    let texts: Vec<String> = (0..tokens).map(|i| format!(" tok{i}")).collect();
    let server = TestServer::start_on(
        format!("127.0.0.1:{port}").parse().expect("address"),
        move |_| Reply::Stream {
            api: Api::OpenaiChat,
            tokens: texts.clone(),
            ttft,
            interval,
            usage: Some((16, tokens as u32)),
            role_chunk: true,
            end: End::Done,
            precise: interval < Duration::from_millis(50),
        },
    );
    println!(
        "stream_server: {tokens} tokens per request, ttft {ttft:?}, interval {interval:?}, at {}",
        server.url()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
