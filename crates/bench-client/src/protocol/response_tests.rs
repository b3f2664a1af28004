//! Tests of [`super`]: the response collector on every API's streams and bodies.

use super::*;
use std::time::Duration;

fn feed(c: &mut Collector, base: Instant, parts: &[(&str, u64)]) -> Result<(), String> {
    c.head(200, base + Duration::from_millis(1));
    for (p, ms) in parts {
        c.data(p.as_bytes(), base + Duration::from_millis(*ms))?;
    }
    c.finish(0)
}

#[test]
fn chat_stream_role_chunk_is_not_a_token_reasoning_is() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    feed(
        &mut c,
        base,
        &[
            ("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n", 5),
            ("data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n", 7),
            ("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\\n\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" you\"},\"finish_reason\":\"length\"}]}\n\n", 9),
            ("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\ndata: [DONE]\n\n", 10),
        ],
    )
    .unwrap();
    assert_eq!(c.first_byte, Some(1_000_000));
    assert_eq!(c.first_token, Some(7_000_000));
    assert_eq!(c.chunks, vec![7_000_000, 9_000_000, 9_000_000]);
    assert_eq!(c.content, "Hi\n you");
    assert_eq!(c.reasoning, "hmm");
    assert_eq!(c.first_reasoning, Some(7_000_000));
    assert_eq!(c.first_answer, Some(9_000_000));
    assert_eq!(c.usage_reasoning, None);
    assert_eq!((c.usage_prompt, c.usage_output), (Some(12), Some(3)));
    assert_eq!(c.finish_reason.as_deref(), Some("length"));
    assert!(c.done);
}

#[test]
fn completions_and_tgi_streams() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiCompletions, true, base);
    feed(&mut c, base, &[("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: [DONE]\n\n", 3)]).unwrap();
    assert_eq!((c.content.as_str(), c.chunks.len()), ("ab", 2));

    let mut t = Collector::new(Api::Tgi, true, base);
    feed(
        &mut t,
        base,
        &[
            ("data:{\"token\":{\"id\":1,\"text\":\"x\",\"special\":false},\"generated_text\":null,\"details\":null}\n\n", 2),
            ("data:{\"token\":{\"id\":2,\"text\":\"</s>\",\"special\":true},\"generated_text\":\"x\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n", 4),
        ],
    )
    .unwrap();
    assert_eq!(
        (t.content.as_str(), t.chunks.clone(), t.usage_output, t.done),
        ("x", vec![2_000_000], Some(2), true)
    );
    assert_eq!(t.finish_reason.as_deref(), Some("eos_token"));
}

#[test]
fn stream_errors() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    let e = feed(
        &mut c,
        base,
        &[(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n",
            2,
        )],
    )
    .unwrap_err();
    assert!(e.starts_with("malformed SSE data"), "{e}");
    assert_eq!(c.chunks.len(), 1, "chunks before the bad line are kept");
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    let e = feed(
        &mut c,
        base,
        &[(
            "data: {\"object\":\"error\",\"message\":\"out of memory\"}\n\n",
            2,
        )],
    )
    .unwrap_err();
    assert_eq!(e, "server error in stream: out of memory");
}

#[test]
fn non_streamed_bodies() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiChat, false, base);
    feed(
        &mut c,
        base,
        &[
            (
                "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hel",
                2,
            ),
            (
                "lo\"}}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}",
                3,
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        (c.content.as_str(), c.usage_output, c.first_token),
        ("hello", Some(2), None)
    );
    let mut t = Collector::new(Api::Tgi, false, base);
    feed(&mut t, base, &[("[{\"generated_text\":\"yo\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":1}}]", 2)]).unwrap();
    assert_eq!((t.content.as_str(), t.usage_output), ("yo", Some(1)));
}

#[test]
fn end_marker_instants() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(200, base);
    c.data(
        b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        base + Duration::from_millis(2),
    )
    .unwrap();
    assert!(!c.complete());
    c.data(b"data: [DONE]\n\n", base + Duration::from_millis(3))
        .unwrap();
    assert!(c.complete());
    assert_eq!(
        (c.done_at, c.last_event_at),
        (Some(3_000_000), Some(3_000_000))
    );
}

#[test]
fn head_fields_name_the_cause() {
    let base = Instant::now();
    let fields = |c: &mut Collector, loc: Option<&[u8]>, enc: Option<&[u8]>, len| {
        c.fields(&Fields {
            location: loc,
            content_encoding: enc,
            content_length: len,
            timing: [None, None, None],
        })
    };
    // A redirect names where to.
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(302, base);
    fields(&mut c, Some(b"https://elsewhere/v1"), None, Some(0));
    c.finish(0).unwrap();
    assert_eq!(
        c.http_error(),
        "HTTP 302 redirect to https://elsewhere/v1 (redirects are not followed)"
    );
    // A compressed body is not read as SSE.
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(200, base);
    fields(&mut c, None, Some(b"gzip"), None);
    assert_eq!(
        c.data(b"\x1f\x8b\x08\x00", base).unwrap_err(),
        "the server sent a Content-Encoding: gzip body, which the client does not decode (it asks for identity)"
    );
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(200, base);
    fields(&mut c, None, Some(b"identity"), None);
    c.data(b"data: [DONE]\n\n", base).unwrap();
    // A Content-Length that ends the body inside an event.
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(200, base);
    fields(&mut c, None, None, Some(30));
    c.data(b"data: {\"choices\":[{\"delta\":{", base).unwrap();
    let e = c.finish(0).unwrap_err();
    assert!(
        e.starts_with("the body ran past its Content-Length (30 bytes): the stream is cut inside an event there (malformed SSE data"),
        "{e}"
    );
}

#[test]
fn buffer_budget_is_shared_charged_and_released() {
    let budget = BufferBudget::shared(16);
    let base = Instant::now();
    let big = vec![b'x'; 10 << 20];
    let mut a = Collector::new(Api::OpenaiChat, true, base).with_budget(budget.clone());
    a.head(200, base);
    a.data(b"data: {\"choices\":[{\"delta\":{\"content\":\"", base)
        .unwrap();
    a.data(&big, base).unwrap();
    assert!(budget.used() > 10 << 20);
    let mut b = Collector::new(Api::OpenaiChat, false, base).with_budget(budget.clone());
    b.head(200, base);
    b.data(b"{", base).unwrap();
    let e = b.data(&big, base).unwrap_err();
    assert!(
        e.starts_with(
            "response buffers would exceed client.max_buffer_mib = 16 MiB across in-flight requests"
        ),
        "{e}"
    );
    // a's line ends: consumed, credited.
    a.data(b"\"}}]}\n\n", base).unwrap();
    assert_eq!(a.content.len(), 10 << 20);
    assert_eq!(budget.used(), 1, "b still holds its first byte");
    drop(b);
    assert_eq!(budget.used(), 0);
    // An error body is charged too, and released with the request.
    let mut c = Collector::new(Api::OpenaiChat, true, base).with_budget(budget.clone());
    c.head(500, base);
    c.data(b"oops", base).unwrap();
    assert_eq!(budget.used(), 4);
    drop(c);
    assert_eq!(budget.used(), 0);
}

#[test]
fn error_bodies_keep_the_message() {
    let base = Instant::now();
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(429, base);
    c.data(
        b"{\"error\":{\"message\":\"rate limited\",\"type\":\"x\"}}",
        base,
    )
    .unwrap();
    c.finish(0).unwrap();
    assert!(!c.success());
    assert_eq!(c.error_body(), "rate limited");
}

#[test]
fn server_timings_are_read_from_llamacpp_usage_details_and_tgi_headers() {
    let base = Instant::now();
    // llama.cpp: `timings` in the last chunk of a stream
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    c.head(200, base);
    let body = concat!(
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],",
        "\"timings\":{\"cache_n\":7,\"prompt_n\":121,\"prompt_ms\":35.5,\"predicted_n\":32,\"predicted_ms\":1713.2514}}\n\n",
        "data: [DONE]\n\n"
    );
    c.data(body.as_bytes(), base).unwrap();
    c.finish(0).unwrap();
    let s = c.server;
    assert_eq!(s.prefill_us, Some(35_500));
    assert_eq!(s.decode_us, Some(1_713_251));
    assert_eq!(s.inference_us, Some(1_748_751));
    assert_eq!(s.cached_prompt_tokens, Some(7));
    assert_eq!(s.queue_us, None);
    // vLLM / OpenAI: cached prompt tokens in the usage details of a body
    let mut c = Collector::new(Api::OpenaiCompletions, false, base);
    c.head(200, base);
    c.data(br#"{"object":"text_completion","choices":[{"text":"x","finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":8}}}"#, base).unwrap();
    c.finish(0).unwrap();
    assert_eq!(c.server.cached_prompt_tokens, Some(8));
    assert_eq!(c.object.as_deref(), Some("text_completion"));
    // TGI: the head's timing headers, whole ms
    let mut c = Collector::new(Api::Tgi, false, base);
    c.head(200, base);
    c.fields(&Fields {
        location: None,
        content_encoding: None,
        content_length: None,
        timing: [Some(b"12"), Some(b" 350"), Some(b"17")],
    });
    assert_eq!(
        (c.server.queue_us, c.server.inference_us),
        (Some(12_000), Some(350_000))
    );
    assert_eq!(c.usage_prompt, Some(17));
    // nothing reported: nothing recorded
    let mut c = Collector::new(Api::OpenaiChat, false, base);
    c.head(200, base);
    c.fields(&Fields {
        location: None,
        content_encoding: None,
        content_length: None,
        timing: [Some(b"soon"), None, Some(b"17")],
    });
    assert!(!c.server.any());
    assert_eq!(c.usage_prompt, None, "x-prompt-tokens is TGI's");
}

#[test]
fn reasoning_field_and_usage_details_both_shapes() {
    let base = Instant::now();
    // vLLM 0.10+: `reasoning`; the usage's completion_tokens_details gives the server's count
    let mut c = Collector::new(Api::OpenaiChat, true, base);
    feed(
        &mut c,
        base,
        &[
            ("data: {\"choices\":[{\"delta\":{\"reasoning\":\" so\",\"content\":null}}]}\n\n", 4),
            ("data: {\"choices\":[{\"delta\":{\"reasoning\":\" then\"}}]}\n\n", 5),
            ("data: {\"choices\":[{\"delta\":{\"content\":\" yes\"},\"finish_reason\":\"stop\"}]}\n\n", 8),
            ("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,\"completion_tokens_details\":{\"reasoning_tokens\":2}}}\n\ndata: [DONE]\n\n", 9),
        ],
    )
    .unwrap();
    assert_eq!(
        (c.reasoning.as_str(), c.content.as_str()),
        (" so then", " yes")
    );
    assert_eq!(
        (c.first_token, c.first_reasoning, c.first_answer),
        (Some(4_000_000), Some(4_000_000), Some(8_000_000))
    );
    assert_eq!(c.usage_reasoning, Some(2));
    // a non-streamed message: `reasoning_content` beside `content`, no chunk times
    let mut b = Collector::new(Api::OpenaiChat, false, base);
    feed(&mut b, base, &[("{\"choices\":[{\"message\":{\"content\":\"ok\",\"reasoning_content\":\"hm\"}}],\"usage\":{\"completion_tokens\":2,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}", 3)]).unwrap();
    assert_eq!(
        (b.reasoning.as_str(), b.content.as_str(), b.usage_reasoning),
        ("hm", "ok", Some(1))
    );
    assert_eq!((b.first_reasoning, b.first_answer), (None, None));
}
