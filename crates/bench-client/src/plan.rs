//! The workload turned into a dispatch plan: every request with its id and scheduled offset,
//! the open-loop dispatch order, sessions as chains of turns, and the warmup copies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bench_config::ClientConfig;
use bench_config::client::Api;
use bench_types::{BlockSpec, LoopMode, Workload, WorkloadRequest};

/// One workload request.
#[derive(Debug, Clone)]
pub struct Item {
    /// Position in the workload file (entry order, then request order).
    pub id: u64,
    /// Scheduled send time, ns from the anchor (timestamp x time_scale).
    pub scheduled_ns: i64,
    /// Session, when the request is a turn of one.
    pub session: Option<u64>,
    /// Turn within the session (the workload's, or the position in the session).
    pub turn: Option<u32>,
    /// The request as the workload gives it.
    pub req: WorkloadRequest,
    /// Resolved image path, when the request has one.
    pub image: Option<PathBuf>,
}

/// How the plan is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each request at its time.
    OpenLoop,
    /// This many chains in flight.
    ClosedLoop(u32),
}

/// The whole plan.
#[derive(Debug)]
pub struct Plan {
    /// Requests by id.
    pub items: Vec<Item>,
    /// Open loop: item indices by (scheduled time, id).
    pub order: Vec<u32>,
    /// Chains: a session's turns in order, or a single request. Ordered by first turn's
    /// (scheduled time, id).
    pub chains: Vec<Vec<u32>>,
    /// Chain of each item.
    pub chain_of: Vec<u32>,
    /// Open or closed loop.
    pub mode: Mode,
    /// Prompt blocks for `hash_ids` requests.
    pub blocks: Option<BlockSpec>,
    /// Items copied as warmup requests, in order.
    pub warmup: Vec<u32>,
    /// Requests in the whole workload file (more than [`Plan::len`] on a shard): warmup
    /// copies take ids from here on.
    pub workload_total: u64,
    /// Bytes of each item's images (before base64), set by the prepare thread and read by
    /// the records writer; empty when no request has an image.
    pub image_bytes: Vec<AtomicU64>,
}

impl Plan {
    /// Records the bytes of item `idx`'s images.
    pub fn note_image_bytes(&self, idx: u32, bytes: u64) {
        if let Some(a) = self.image_bytes.get(idx as usize) {
            a.store(bytes, Ordering::Relaxed);
        }
    }

    /// The bytes of item `idx`'s images, when it has any and they were made.
    pub fn image_bytes(&self, idx: u32) -> Option<u64> {
        if !self.items.get(idx as usize)?.req.has_images() {
            return None;
        }
        let n = self.image_bytes.get(idx as usize)?.load(Ordering::Relaxed);
        (n > 0).then_some(n)
    }

    /// Number of workload requests.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether the workload is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Whether any request belongs to a session.
    pub fn has_sessions(&self) -> bool {
        self.items.iter().any(|i| i.session.is_some())
    }
}

/// Builds the plan; errors name the workload file.
pub fn build(
    wl: Workload,
    c: &ClientConfig,
    wl_path: &Path,
    run_dir: &Path,
) -> Result<Plan, String> {
    let header = wl.header.clone();
    let mode = match wl.mode() {
        LoopMode::OpenLoop => Mode::OpenLoop,
        LoopMode::ClosedLoop => {
            let n = header.as_ref().and_then(|h| h.concurrency).or(c.max_concurrency).ok_or_else(|| {
                format!("{}: closed-loop workload without a concurrency (set it in the header or client.max_concurrency)", wl_path.display())
            })?;
            let n = c.max_concurrency.map_or(n, |m| m.min(n));
            if n == 0 {
                return Err(format!(
                    "{}: closed-loop concurrency is 0",
                    wl_path.display()
                ));
            }
            Mode::ClosedLoop(n)
        }
    };
    let blocks = header.and_then(|h| h.prompt_blocks);
    let workload_total = wl.num_requests() as u64;
    // a shard keeps its part; ids stay the workload's, so the shards' rows merge by id
    let owner = c
        .shard
        .map(|s| (s.index, bench_types::shard::assign(&wl, s.count)));
    let mut items = Vec::with_capacity(wl.num_requests());
    let mut missing_images = Vec::new();
    let mut id = 0u64;
    for (line, e) in wl.entries.into_iter().enumerate() {
        let scheduled_ns = (e.timestamp * c.time_scale * 1e6).round() as i64;
        for r in e.requests {
            id += 1;
            if let Some((me, owner)) = &owner
                && owner[id as usize - 1] != *me
            {
                continue;
            }
            check_images(c.api, &r, wl_path, id - 1)?;
            let image = match &r.image_path {
                Some(p) => {
                    let resolved = resolve_image(p, wl_path, run_dir);
                    if resolved.is_none() && missing_images.len() < 3 {
                        missing_images.push(format!("{p} (entry {})", line + 1));
                    }
                    resolved
                }
                None => None,
            };
            items.push(Item {
                id: id - 1,
                scheduled_ns,
                session: r.session_id,
                turn: r.turn,
                req: r,
                image,
            });
        }
    }
    if !missing_images.is_empty() {
        return Err(format!(
            "{}: image file not found: {}",
            wl_path.display(),
            missing_images.join(", ")
        ));
    }
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.sort_by_key(|&i| (items[i as usize].scheduled_ns, i));

    // Chains: sessions grouped, turns ordered by their turn number (or file order).
    let mut by_session: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut chains: Vec<Vec<u32>> = Vec::new();
    for &i in &order {
        match items[i as usize].session {
            Some(s) => by_session.entry(s).or_default().push(i),
            None => chains.push(vec![i]),
        }
    }
    for (s, mut turns) in by_session {
        if turns.iter().all(|&i| items[i as usize].turn.is_some()) {
            turns.sort_by_key(|&i| (items[i as usize].turn, i));
            for w in turns.windows(2) {
                if items[w[0] as usize].turn == items[w[1] as usize].turn {
                    return Err(format!(
                        "{}: session {s} has turn {} twice (requests {} and {})",
                        wl_path.display(),
                        items[w[0] as usize].turn.unwrap_or(0),
                        w[0],
                        w[1]
                    ));
                }
            }
        } else {
            turns.sort_unstable();
            for (k, &i) in turns.iter().enumerate() {
                items[i as usize].turn = Some(k as u32);
            }
        }
        chains.push(turns);
    }
    chains.sort_by_key(|ch| {
        ch.iter()
            .map(|&i| (items[i as usize].scheduled_ns, i))
            .min()
            .unwrap_or((0, 0))
    });
    let mut chain_of = vec![0u32; items.len()];
    for (k, ch) in chains.iter().enumerate() {
        for &i in ch {
            chain_of[i as usize] = k as u32;
        }
    }
    let warmup = if items.is_empty() {
        Vec::new()
    } else {
        (0..c.warmup_requests as usize)
            .map(|k| order[k % order.len()])
            .collect()
    };
    let image_bytes = if items.iter().any(|it| it.req.has_images()) {
        items.iter().map(|_| AtomicU64::new(0)).collect()
    } else {
        Vec::new()
    };
    Ok(Plan {
        image_bytes,
        items,
        order,
        chains,
        chain_of,
        mode,
        blocks,
        warmup,
        workload_total,
    })
}

/// Images go only where a body can carry them: chat messages, or a template.
fn check_images(api: Api, r: &WorkloadRequest, wl_path: &Path, id: u64) -> Result<(), String> {
    if !r.has_images() || matches!(api, Api::OpenaiChat | Api::Template) {
        return Ok(());
    }
    let what = if r.images.as_ref().is_some_and(|v| !v.is_empty()) {
        "synthetic images (dataset.images)"
    } else {
        "an image_path"
    };
    Err(format!(
        "{}: request {id} has {what}; images need client.api openai-chat (or a template with {{{{image_url}}}})",
        wl_path.display()
    ))
}

/// An image path as given (absolute, or relative to the working directory), else relative to
/// the workload file's directory, else to the run directory.
fn resolve_image(p: &str, wl_path: &Path, run_dir: &Path) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    if path.is_file() {
        return Some(path);
    }
    if path.is_absolute() {
        return None;
    }
    let candidates = [
        wl_path.parent().map(|d| d.join(&path)),
        Some(run_dir.join(&path)),
    ];
    candidates.into_iter().flatten().find(|c| c.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_types::{WorkloadEntry, WorkloadHeader};

    fn req(session: Option<u64>, turn: Option<u32>) -> WorkloadRequest {
        WorkloadRequest {
            prompt: Some("p".into()),
            session_id: session,
            turn,
            ..Default::default()
        }
    }

    fn wl(entries: Vec<(f64, Vec<WorkloadRequest>)>) -> Workload {
        Workload {
            header: None,
            entries: entries
                .into_iter()
                .map(|(t, r)| WorkloadEntry {
                    timestamp: t,
                    requests: r,
                })
                .collect(),
        }
    }

    #[test]
    fn ids_schedule_order_and_sessions() {
        let c = ClientConfig {
            time_scale: 0.5,
            warmup_requests: 3,
            ..ClientConfig::default()
        };
        let w = wl(vec![
            (10.0, vec![req(None, None), req(Some(7), Some(1))]),
            (4.0, vec![req(Some(7), Some(0))]),
            (20.0, vec![req(Some(9), None), req(Some(9), None)]),
        ]);
        let p = build(w, &c, Path::new("w.jsonl"), Path::new(".")).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(
            p.items.iter().map(|i| i.scheduled_ns).collect::<Vec<_>>(),
            vec![5_000_000, 5_000_000, 2_000_000, 10_000_000, 10_000_000]
        );
        assert_eq!(p.order, vec![2, 0, 1, 3, 4]);
        assert_eq!(p.chains, vec![vec![2, 1], vec![0], vec![3, 4]]);
        assert_eq!(
            p.items[4].turn,
            Some(1),
            "turns numbered by file order when the workload gives none"
        );
        assert_eq!(p.chain_of, vec![1, 0, 0, 2, 2]);
        assert_eq!(p.warmup, vec![2, 0, 1]);
        assert_eq!(p.mode, Mode::OpenLoop);
    }

    #[test]
    fn bad_workloads_are_named() {
        let c = ClientConfig::default();
        let w = wl(vec![(
            0.0,
            vec![req(Some(1), Some(0)), req(Some(1), Some(0))],
        )]);
        let e = build(w, &c, Path::new("w.jsonl"), Path::new(".")).unwrap_err();
        assert!(e.contains("w.jsonl: session 1 has turn 0 twice"), "{e}");

        let mut w = wl(vec![(0.0, vec![req(None, None)])]);
        w.header = Some(WorkloadHeader {
            mode: LoopMode::ClosedLoop,
            ..WorkloadHeader::open_loop("concurrency")
        });
        let e = build(w.clone(), &c, Path::new("w.jsonl"), Path::new(".")).unwrap_err();
        assert!(
            e.contains("closed-loop workload without a concurrency"),
            "{e}"
        );
        let c2 = ClientConfig {
            max_concurrency: Some(3),
            ..ClientConfig::default()
        };
        assert_eq!(
            build(w, &c2, Path::new("w.jsonl"), Path::new("."))
                .unwrap()
                .mode,
            Mode::ClosedLoop(3)
        );

        let mut r = req(None, None);
        r.image_path = Some("/nonexistent/x.png".into());
        let e = build(
            wl(vec![(0.0, vec![r.clone()])]),
            &c,
            Path::new("w.jsonl"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.contains("image file not found: /nonexistent/x.png"),
            "{e}"
        );
        let c3 = ClientConfig {
            api: Api::OpenaiCompletions,
            ..ClientConfig::default()
        };
        let e = build(
            wl(vec![(0.0, vec![r])]),
            &c3,
            Path::new("w.jsonl"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.contains("images need client.api openai-chat"), "{e}");
    }
}
