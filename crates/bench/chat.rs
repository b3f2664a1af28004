//! `bench chat`: a conversation with the configured endpoint, one line of input per turn.
//!
//! The endpoint, API, model, key and headers are the client stage's (`client.*`); `sim` starts
//! the simulated engine in-process as a run does. Each line is sent with the conversation so
//! far and the reply streams to stdout, then one line of figures. Lines starting with `/` are
//! commands ([`HELP`]). Two threads feed the loop: one reads stdin (a terminal or a pipe, the
//! same way), one forwards signals: Ctrl-C cancels a reply in flight, and at the prompt only
//! prints a hint; SIGTERM and SIGHUP end the process (128 + the signal).

use std::io::{IsTerminal, Write};
use std::path::Path;

use bench_client::chat::{Chat, Delta, Figures};
use bench_config::{Endpoint, Resolved};
use bench_types::StageError;
use bench_types::manifest::Stage;
use bench_types::stage::exit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::driver::{Failure, check_server, resolve_tokenizer};
use crate::signals::Signals;

const SIGINT: i32 = 2;

/// `println!` that never panics: a closed stdout (`bench chat | head`) is not a crash.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics.
macro_rules! say_err {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// What `/help` prints.
const HELP: &str = "\
Type a message and press Enter; the reply streams, then its figures:
  TTFT (send to first token), TPOT ((e2e - TTFT) / (tokens - 1)), output tokens (the
  config's tokenizer), tokens/s (output tokens / e2e) and the server's usage.
Commands:
  /help         this text
  /reset        forget the conversation (the next message starts a new one)
  /image ARG    attach an image to the next message (openai-chat): a file, or a synthetic
                picture of a size: small (500x500), medium, large (2000x2000), WxH; add
                `png` for a PNG (else JPEG)
  /save FILE    write the conversation as a dataset (AIBrix session layout); replay it with
                --override dataset.type=custom --override dataset.custom.path=FILE
  /exit, /quit  quit (as does Ctrl-D)
Ctrl-C cancels a reply in flight (the turn is not kept); at the prompt it does nothing.";

/// Runs `bench chat`; returns the exit status.
pub fn run(mut resolved: Resolved, signals: &Signals, quiet: bool) -> Result<i32, Failure> {
    for w in &resolved.warnings {
        tracing::warn!("config: {w}");
    }
    resolve_tokenizer(&mut resolved)?;
    // a URL endpoint is checked the way a run checks it (and the model taken from its list)
    check_server(&mut resolved, &[Stage::Client])?;
    let cfg = &resolved.config;
    let sim = match &cfg.client.endpoint {
        Endpoint::Sim => {
            let bind = "127.0.0.1:0".parse().expect("valid address");
            Some(
                bench_sim::spawn_for_run(cfg, bind)
                    .map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?,
            )
        }
        Endpoint::Url(_) => None,
    };
    let base_url = match &sim {
        Some(h) => h.base_url(),
        None => cfg.client.endpoint.to_string(),
    };
    let code = converse(&resolved, &base_url, signals, quiet);
    if let Some(h) = sim {
        h.shutdown();
    }
    code
}

/// The loop: read, send, show, until `/exit`, end of input or a terminating signal.
fn converse(
    resolved: &Resolved,
    base_url: &str,
    signals: &Signals,
    quiet: bool,
) -> Result<i32, Failure> {
    let cfg = &resolved.config;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::FAILURE, format!("starting the runtime: {e}")))?;
    let mut chat = rt
        .block_on(Chat::new(cfg, base_url))
        .map_err(|e| Failure::new(e.exit_code(), format!("chat: {e}")))?;
    let tty = std::io::stdin().is_terminal();
    let out = Out {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    if tty && !quiet {
        say_err!(
            "bench chat: `{}` at {} ({}); /help lists the commands, /exit or Ctrl-D quits",
            cfg.client.model,
            chat.url(),
            if chat.sends_messages() {
                "the conversation as chat messages"
            } else {
                "the conversation as one prompt"
            }
        );
    }
    let mut lines = spawn_stdin_reader();
    let mut sigs = forward_signals(signals);
    loop {
        if tty {
            out.prompt();
        }
        let next = rt.block_on(async {
            tokio::select! {
                l = lines.recv() => Next::Line(l),
                Some(s) = sigs.recv() => Next::Signal(s),
            }
        });
        let line = match next {
            Next::Signal(SIGINT) => {
                say_err!("\n(Ctrl-C cancels a reply; /exit or Ctrl-D quits)");
                continue;
            }
            Next::Signal(s) => return Ok(128 + s),
            Next::Line(None) => {
                if tty {
                    say!();
                }
                return Ok(exit::OK);
            }
            Next::Line(Some(l)) => l,
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(cmd) = text.strip_prefix('/') {
            match command(&mut chat, cmd) {
                Some(code) => return Ok(code),
                None => continue,
            }
        }
        if let Some(code) = turn(&rt, &mut chat, text, &mut sigs, out) {
            return Ok(code);
        }
    }
}

enum Next {
    Line(Option<String>),
    Signal(i32),
}

/// One exchange: the reply streamed, then its figures or why it failed. Some(status) when a
/// signal other than Ctrl-C ends the process.
fn turn(
    rt: &tokio::runtime::Runtime,
    chat: &mut Chat,
    text: &str,
    sigs: &mut UnboundedReceiver<i32>,
    out: Out,
) -> Option<i32> {
    let mut shown = Shown::default();
    let ended = rt.block_on(async {
        let mut on = |d: Delta<'_>| out.delta(&mut shown, d);
        tokio::select! {
            r = chat.send(text, &mut on) => Ok(r),
            // dropping the request closes its connection; the history is left as it was
            Some(s) = sigs.recv() => Err(s),
        }
    });
    out.end_reply(&shown);
    match ended {
        Ok(Ok(f)) => say!("{}", figures_line(&f)),
        Ok(Err(e)) => say_err!("error: {e}"),
        Err(SIGINT) => say!("[cancelled]"),
        Err(s) => {
            say!("[cancelled]");
            return Some(128 + s);
        }
    }
    None
}

/// A `/command`; Some(status) to quit.
fn command(chat: &mut Chat, cmd: &str) -> Option<i32> {
    let (name, arg) = match cmd.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (cmd, ""),
    };
    match name {
        "exit" | "quit" => return Some(exit::OK),
        "help" => say!("{HELP}"),
        "reset" => {
            let n = chat.turns();
            chat.reset();
            say!(
                "conversation cleared ({n} turn{} forgotten)",
                if n == 1 { "" } else { "s" }
            );
        }
        "image" => match chat.attach_image(arg) {
            Ok(what) => say!("attached {what} to the next message"),
            Err(e) => say_err!("error: /image: {e}"),
        },
        "save" if arg.is_empty() => say_err!("error: /save needs a file name: /save FILE"),
        "save" => match save(chat, Path::new(arg)) {
            Ok(n) => {
                say!(
                    "saved {n} turn{} to {arg} (replay: --override dataset.type=custom --override dataset.custom.path={arg})",
                    if n == 1 { "" } else { "s" }
                );
                let k = chat.sent_images();
                if k > 0 {
                    say!(
                        "note: the conversation's {k} image{} not saved: the session layout holds text",
                        if k == 1 { " is" } else { "s are" }
                    );
                }
            }
            Err(e) => say_err!("error: /save: {e}"),
        },
        other => say_err!("error: unknown command /{other} (/help lists the commands)"),
    }
    None
}

/// Writes the conversation as one session line; the number of turns written.
fn save(chat: &Chat, path: &Path) -> Result<usize, String> {
    let rec = chat
        .session(0)
        .ok_or("nothing to save yet: no reply has completed since the start or /reset")?;
    bench_types::jsonl::write_all(path, [&rec]).map_err(|e| e.to_string())?;
    Ok(rec.prompts.len())
}

/// The figures of a reply, on one line.
fn figures_line(f: &Figures) -> String {
    let ms = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} ms"));
    let reasoning = if f.reasoning_tokens > 0 {
        format!(" ({} reasoning)", f.reasoning_tokens)
    } else {
        String::new()
    };
    let usage = match (f.usage_prompt, f.usage_completion) {
        (None, None) => "usage none".to_string(),
        (p, c) => {
            let n = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
            format!("usage prompt={} completion={}", n(p), n(c))
        }
    };
    format!(
        "TTFT {} · TPOT {} · output {} tokens{reasoning} · {} tokens/s · {usage} · sent {:.1} KB",
        ms(f.ttft_ms),
        ms(f.tpot_ms()),
        f.output_tokens,
        f.tokens_per_s()
            .map_or("n/a".to_string(), |v| format!("{v:.1}")),
        f.request_bytes as f64 / 1e3,
    )
}

/// What of a reply has been shown.
#[derive(Debug, Default)]
struct Shown {
    /// Anything at all.
    any: bool,
    /// The last piece was reasoning.
    reasoning: bool,
    /// The last piece ended with a line break.
    newline: bool,
}

/// Writing to stdout; reasoning is dimmed on a colour terminal, else marked `[reasoning]`.
#[derive(Debug, Clone, Copy)]
struct Out {
    color: bool,
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Out {
    fn prompt(self) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(b"> ");
        let _ = o.flush();
    }

    /// A piece of the reply, flushed at once.
    fn delta(self, s: &mut Shown, d: Delta<'_>) {
        let mut o = std::io::stdout().lock();
        let (text, reasoning) = match d {
            Delta::Reasoning(t) => (t, true),
            Delta::Answer(t) => (t, false),
        };
        let _ = match (reasoning, s.reasoning) {
            (true, false) if self.color => write!(o, "{DIM}{text}"),
            (true, false) => {
                let gap = if text.starts_with(char::is_whitespace) {
                    ""
                } else {
                    " "
                };
                write!(o, "[reasoning]{gap}{text}")
            }
            (true, true) => write!(o, "{text}"),
            (false, true) => {
                let reset = if self.color { RESET } else { "" };
                let nl = if s.newline { "" } else { "\n" };
                write!(o, "{reset}{nl}{text}")
            }
            (false, false) => write!(o, "{text}"),
        };
        let _ = o.flush();
        s.any = true;
        s.reasoning = reasoning;
        s.newline = text.ends_with('\n');
    }

    /// After the reply (complete or not): the colour reset, the line ended.
    fn end_reply(self, s: &Shown) {
        let mut o = std::io::stdout().lock();
        if s.reasoning && self.color {
            let _ = o.write_all(RESET.as_bytes());
        }
        if s.any && !s.newline {
            let _ = o.write_all(b"\n");
        }
        let _ = o.flush();
    }
}

/// Stdin, line by line (lossy UTF-8, without the line end), on a thread of its own; the
/// channel closes at the end of the input.
fn spawn_stdin_reader() -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    let _ = std::thread::Builder::new()
        .name("bench-chat-stdin".into())
        .spawn(move || read_lines(&tx));
    rx
}

fn read_lines(tx: &UnboundedSender<String>) {
    use std::io::BufRead;
    let mut stdin = std::io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match stdin.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// Every signal from now on, as a channel the loop can wait on beside its input.
fn forward_signals(signals: &Signals) -> UnboundedReceiver<i32> {
    let caught = signals.catch();
    let (tx, rx) = unbounded_channel();
    let _ = std::thread::Builder::new()
        .name("bench-chat-signals".into())
        .spawn(move || {
            while let Ok(s) = caught.recv() {
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_line_labels_every_figure() {
        let f = Figures {
            ttft_ms: Some(123.44),
            e2e_ms: 898.64,
            output_tokens: 64,
            reasoning_tokens: 0,
            usage_prompt: Some(30),
            usage_completion: Some(64),
            finish_reason: Some("length".into()),
            request_bytes: 1_530,
        };
        assert_eq!(
            figures_line(&f),
            "TTFT 123.4 ms · TPOT 12.3 ms · output 64 tokens · 71.2 tokens/s · usage prompt=30 completion=64 · sent 1.5 KB"
        );
        let f = Figures {
            ttft_ms: None,
            output_tokens: 0,
            reasoning_tokens: 0,
            usage_prompt: None,
            usage_completion: None,
            ..f
        };
        assert_eq!(
            figures_line(&f),
            "TTFT n/a · TPOT n/a · output 0 tokens · 0.0 tokens/s · usage none · sent 1.5 KB"
        );
    }
}
