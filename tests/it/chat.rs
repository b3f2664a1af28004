//! `bench chat` through the real binary: on a pseudo-terminal as a person types (replies,
//! figures, `/save`, `/reset`, Ctrl-C mid-reply and at the prompt, `/exit`), with lines piped
//! in, and the saved conversation replayed by the pipeline as a session.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use bench_types::SessionRecord;

use crate::common::*;

/// Every reply's length: config/chat.yaml's client.max_output_tokens, with
/// force_output_length.
const OUTPUT: u32 = 64;

/// How long any one expected output may take.
const WAIT: Duration = Duration::from_secs(60);

/// `bench chat` on a pseudo-terminal that is its controlling terminal (`setsid -c`), so a
/// `\x03` typed goes through the line discipline as SIGINT, as Ctrl-C does.
struct Pty {
    master: File,
    rx: Receiver<Vec<u8>>,
    /// Everything read so far, and how far [`Pty::expect`] has consumed it.
    seen: String,
    pos: usize,
    child: Child,
}

impl Pty {
    /// None (the test skipped, with the reason printed) without util-linux's `setsid`; under
    /// `CI=true` that fails the test.
    fn spawn(args: &[&str]) -> Option<Pty> {
        use rustix::fs::{Mode, OFlags};
        let setsid = Command::new("setsid").arg("--version").output();
        if !setsid.is_ok_and(|o| o.status.success()) {
            let why =
                "util-linux's setsid is not installed (it makes the terminal the controlling one)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipping: {why}");
            return None;
        }
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("a pseudo-terminal");
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = File::from(
            rustix::fs::open(
                name.as_c_str(),
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap(),
        );
        let mut cmd = Command::new("setsid");
        cmd.args(["-w", "-c", env!("CARGO_BIN_EXE_bench"), "chat"])
            .args(args)
            .current_dir(root())
            .env_remove("RUST_LOG")
            .env("BENCH_CATALOG__ENABLED", "false")
            .env("NO_COLOR", "1")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = cmd.spawn().expect("setsid (util-linux) runs bench chat");
        // the child holds the only descriptors of the terminal's other end now: its output
        // ends (EIO) when it exits
        drop(cmd);
        let master = File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Some(Pty {
            master,
            rx,
            seen: String::new(),
            pos: 0,
            child,
        })
    }

    fn type_in(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Reads until `what` appears after what was consumed; returns the text up to its end.
    fn expect(&mut self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.seen[self.pos..].find(what) {
                let end = self.pos + i + what.len();
                let got = self.seen[self.pos..end].to_string();
                self.pos = end;
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no {what:?} within {WAIT:?}; the terminal showed:\n{}",
                    self.seen
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "bench chat ended before {what:?}; the terminal showed:\n{}",
                    self.seen
                ),
            }
        }
    }

    /// At the prompt, types `line`; returns what showed before the figures (the echo, the
    /// reply) and the figures, checked to agree with each other and to count [`OUTPUT`] tokens.
    fn ask(&mut self, line: &str) -> (String, Stats) {
        self.expect("> ");
        self.type_in(&format!("{line}\n"));
        let before = self.expect("TTFT ");
        let figures = Stats::parse(&format!("TTFT {}", self.expect("\n")));
        figures.check_consistent();
        assert_eq!(figures.output, OUTPUT, "{figures:?}");
        assert_eq!(figures.usage_completion, OUTPUT, "{figures:?}");
        let before = before.strip_suffix("TTFT ").unwrap_or(&before).to_string();
        (before, figures)
    }

    /// Waits for the exit status.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "bench chat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The figures line: `TTFT 12.3 ms · TPOT 9.1 ms · output 64 tokens · 110.1 tokens/s · usage
/// prompt=7 completion=64 · sent 0.2 KB`.
#[derive(Debug)]
struct Stats {
    ttft_ms: f64,
    tpot_ms: f64,
    output: u32,
    tokens_per_s: f64,
    usage_prompt: u32,
    usage_completion: u32,
    sent_kb: f64,
}

impl Stats {
    fn parse(line: &str) -> Stats {
        let line = line.trim();
        let parts: Vec<&str> = line.split(" · ").collect();
        assert_eq!(parts.len(), 6, "six labelled figures: {line:?}");
        let num = |p: &str, label: &str, unit: &str| -> f64 {
            p.strip_prefix(label)
                .and_then(|r| r.strip_suffix(unit))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{label}...{unit} in {line:?}"))
        };
        let usage = parts[4]
            .strip_prefix("usage prompt=")
            .and_then(|r| r.split_once(" completion="))
            .unwrap_or_else(|| panic!("the server's usage in {line:?}"));
        Stats {
            ttft_ms: num(parts[0], "TTFT ", " ms"),
            tpot_ms: num(parts[1], "TPOT ", " ms"),
            output: num(parts[2], "output ", " tokens") as u32,
            tokens_per_s: num(parts[3], "", " tokens/s"),
            usage_prompt: usage.0.parse().unwrap(),
            usage_completion: usage.1.parse().unwrap(),
            sent_kb: num(parts[5], "sent ", " KB"),
        }
    }

    /// The figures agree with each other: tokens/s is the output over TTFT + TPOT x (n - 1).
    fn check_consistent(&self) {
        assert!(self.ttft_ms > 0.0 && self.tpot_ms > 0.0, "{self:?}");
        let e2e_s = (self.ttft_ms + self.tpot_ms * f64::from(self.output - 1)) / 1e3;
        let rate = f64::from(self.output) / e2e_s;
        assert!(
            (rate - self.tokens_per_s).abs() <= 0.02 * rate + 0.2,
            "tokens/s {} but output / e2e = {rate:.1}: {self:?}",
            self.tokens_per_s
        );
    }
}

fn read_session(path: &Path) -> SessionRecord {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.lines().count(), 1, "one session line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Output length fixed (config/chat.yaml: client.max_output_tokens 64 with
/// force_output_length); the engine at a third of its speed, so a reply takes ~2 s and a
/// Ctrl-C lands inside one.
#[test]
fn chat_on_a_terminal_streams_measures_saves_resets_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("talk.jsonl");
    let saved = saved.to_str().unwrap();
    let Some(mut t) = Pty::spawn(&[
        "--config",
        "config/chat.yaml",
        "--override",
        "sim.time_scale=3",
    ]) else {
        return;
    };
    t.expect("bench chat: `sim-model` at http://127.0.0.1:");

    let (text, first) = t.ask("Hello there, who are you?");
    // the echo, then the streamed reply
    let reply = text.split_once("who are you?").unwrap().1.trim();
    assert!(reply.split_whitespace().count() > 10, "{text:?}");
    assert_eq!(
        first.usage_prompt, 7,
        "the prompt alone, counted as the client counts"
    );
    // 9 ms steps at a third of the speed
    assert!(
        (15.0..200.0).contains(&first.tpot_ms),
        "TPOT {}",
        first.tpot_ms
    );

    let (_, second) = t.ask("Tell me more.");
    assert!(
        second.usage_prompt > first.usage_prompt + OUTPUT,
        "the history (the first prompt and reply) went with the second turn: {second:?}"
    );

    t.expect("> ");
    t.type_in(&format!("/save {saved}\n"));
    t.expect("saved 2 turns");
    let s = read_session(Path::new(saved));
    assert_eq!(s.session_id, 0);
    assert_eq!(s.prompts, ["Hello there, who are you?", "Tell me more."]);
    assert_eq!(s.completion_lengths, Some(vec![OUTPUT, OUTPUT]));
    assert_eq!(s.prompt_lengths.as_ref().map(|p| p[0]), Some(7));
    assert_eq!(s.completions.as_ref().unwrap()[0].trim(), reply);

    t.expect("> ");
    t.type_in("/reset\n");
    t.expect("conversation cleared (2 turns forgotten)");

    // Ctrl-C once the reply is streaming
    t.expect("> ");
    t.type_in("Write a long story.\n");
    t.expect("long story.");
    t.expect(" ");
    t.type_in("\x03");
    let cut = t.expect("[cancelled]");
    assert!(
        !cut.contains("TTFT"),
        "no figures for a cancelled reply: {cut:?}"
    );

    // the REPL goes on, and the cancelled turn is not in the conversation
    let (_, after) = t.ask("Are you there?");
    assert_eq!(
        after.usage_prompt, 4,
        "neither the reset nor the cancelled turn was sent"
    );
    t.expect("> ");
    t.type_in(&format!("/save {saved}\n"));
    t.expect("saved 1 turn");
    assert_eq!(read_session(Path::new(saved)).prompts, ["Are you there?"]);

    // Ctrl-C at the prompt is a hint, then /exit
    t.expect("> ");
    t.type_in("\x03");
    t.expect("/exit or Ctrl-D quits");
    t.expect("> ");
    t.type_in("/nope\n");
    t.expect("unknown command /nope");
    t.type_in("/exit\n");
    assert_eq!(t.wait().code(), Some(0), "{}", t.seen);
}

/// `bench chat` with its input piped (a script): `lines`, then the end of input.
fn chat_piped(args: &[&str], lines: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.current_dir(root())
        .env_remove("RUST_LOG")
        .env("BENCH_CATALOG__ENABLED", "false")
        .args(["chat", "-q"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Piped lines are read the same way; the saved conversation replays through the pipeline as
/// one session, its turns in order, each with the history before it.
#[test]
fn piped_chat_saves_a_session_that_the_pipeline_replays() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("talk.jsonl");
    let prompts = ["What is a benchmark?", "And a trace?", "Thanks."];
    let input = format!("{}\n/save {}\n", prompts.join("\n"), saved.display());
    let out = chat_piped(&["--config", "config/chat.yaml"], &input);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    let figures: Vec<Stats> = stdout
        .lines()
        .filter(|l| l.starts_with("TTFT "))
        .map(Stats::parse)
        .collect();
    assert_eq!(figures.len(), 3, "{stdout}");
    for f in &figures {
        f.check_consistent();
        assert_eq!(f.output, OUTPUT);
    }
    assert!(
        !stdout.contains("> "),
        "no prompt when stdin is not a terminal"
    );
    let s = read_session(&saved);
    assert_eq!(s.prompts, prompts);

    // the replay: config/chat.yaml's closed loop of one
    let run = dir.path().join("run");
    let path = format!("dataset.custom.path={}", saved.display());
    bench_ok(
        &run,
        &overrides(&[
            "dataset.type=custom",
            &path,
            "workload.type=concurrency",
            "workload.concurrency.concurrency=1",
            &format!("client.max_output_tokens={OUTPUT}"),
        ]),
    );
    let r = read_rows(&run);
    assert_eq!(r.len(), 3);
    assert_eq!(r.count("ok"), 3, "{:?}", r.status);
    let mut idx: Vec<usize> = (0..3).collect();
    idx.sort_by_key(|&i| r.turn[i]);
    assert_eq!(
        idx.iter().map(|&i| r.turn[i]).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2)]
    );
    let session = r.session_id[idx[0]];
    assert!(session.is_some());
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(r.session_id[b], session, "one session");
        assert!(
            r.sent_ns[b].unwrap() >= r.end_ns[a].unwrap(),
            "turn after reply"
        );
        assert!(
            r.usage_prompt_tokens[b].unwrap()
                > r.usage_prompt_tokens[a].unwrap() + i64::from(OUTPUT),
            "the history went with the later turn"
        );
    }
    // the prompts sent are the ones typed
    let ds = std::fs::read_to_string(run.join("dataset.jsonl")).unwrap();
    let rec: SessionRecord = serde_json::from_str(ds.lines().next().unwrap()).unwrap();
    assert_eq!(rec.prompts, prompts);
}

/// A failed turn is one line naming the endpoint, and the conversation goes on; a bad config
/// is exit 2 before anything starts.
#[test]
fn chat_reports_failed_turns_and_goes_on() {
    let port = bench_testkit::closed_port();
    let endpoint = format!("client.endpoint=http://127.0.0.1:{port}");
    let out = chat_piped(
        &overrides(&[&endpoint, "client.preflight=false", "client.model=m"]),
        "hello\nhello again\n/exit\n",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let want = format!("error: http://127.0.0.1:{port}/v1/chat/completions: connect");
    assert_eq!(err.matches(&want).count(), 2, "{err}");

    // the in-process engine serves sim-model only: HTTP 404, said, and the REPL goes on
    let out = chat_piped(
        &overrides(&["client.model=other", "client.max_output_tokens=4"]),
        "hello\n/exit\n",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("/v1/chat/completions: HTTP 404"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = chat_piped(&overrides(&["client.api=nope"]), "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `/image`: a synthetic picture (or a file) goes with the next message and stays in the
/// conversation; the engine counts it by its size; the stats line says what was sent.
#[test]
fn chat_attaches_images_to_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("talk.jsonl");
    let input = format!(
        "/image\n/image nope.tiff\n/image small\nDescribe it.\nAnd again?\n/image 64x48 png\nThird.\n/save {}\n",
        saved.display()
    );
    let args = [
        "--config",
        "config/chat.yaml",
        "--override",
        "sim.image_patch_px=28",
    ];
    let out = chat_piped(&args, &input);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: /image: /image needs a file or a size"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: /image: image nope.tiff: unknown image type"),
        "{stderr}"
    );
    assert!(
        stdout.contains("attached a synthetic 500x500 JPEG of ")
            && stdout.contains("attached a synthetic 64x48 PNG of "),
        "{stdout}"
    );
    let f: Vec<Stats> = stdout
        .lines()
        .filter(|l| l.starts_with("TTFT "))
        .map(Stats::parse)
        .collect();
    assert_eq!(f.len(), 3, "{stdout}");
    // 500x500 in 28-pixel patches: 18 x 18 = 324 tokens; 64x48: 3 x 2 = 6
    assert!(
        f[0].usage_prompt >= 324 && f[0].usage_prompt < 324 + 10,
        "{:?}",
        f[0]
    );
    assert!(
        f[0].sent_kb > 40.0,
        "the JPEG's base64 is in the body: {:?}",
        f[0]
    );
    // the second turn carries the first image in its history, and sends no new one
    assert!(f[1].usage_prompt > f[0].usage_prompt + OUTPUT, "{:?}", f[1]);
    assert!(
        (f[1].sent_kb - f[0].sent_kb).abs() < 2.0,
        "{:?} vs {:?}",
        f[1],
        f[0]
    );
    assert!(
        f[2].usage_prompt >= f[1].usage_prompt + OUTPUT + 6,
        "{:?}",
        f[2]
    );
    assert!(
        stdout.contains("the conversation's 2 images are not saved"),
        "{stdout}"
    );
    assert_eq!(
        read_session(&saved).prompts,
        ["Describe it.", "And again?", "Third."]
    );

    // a conversation sent as one prompt carries no image
    let out = chat_piped(
        &[
            "--config",
            "config/chat.yaml",
            "--override",
            "client.api=openai-completions",
        ],
        "/image small\n",
    );
    assert!(
        text(&out.stderr).contains("images need client.api openai-chat"),
        "{}",
        text(&out.stderr)
    );
}
