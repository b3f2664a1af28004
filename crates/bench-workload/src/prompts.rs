//! Prompts from `dataset.jsonl`: the pool, the closest-length matcher and the as-is drawer.
//!
//! * Lengths: a record's `prompt_length` (or a session's `prompt_lengths`) is trusted when
//!   present (the dataset stage measures it under the run's tokenizer); otherwise the prompt is
//!   counted with the tokenizer. Output lengths come from `output_length`, a session's
//!   `completion_lengths`, or by counting its `completions` (tokens, never characters).
//! * [`Matcher`]: the prompt whose token length is closest to a target, over every prompt and
//!   every session turn (as a standalone prompt); ties (equal lengths, or equally far above and
//!   below) are broken uniformly at random, so repeated targets get varied prompts.
//! * [`Drawer`]: prompts as they are. Plain datasets: a seeded shuffle, every prompt once per
//!   cycle. Session datasets: up to `max_active` sessions are open; each draw takes the next
//!   turn of one open session chosen at random; a finished session is replaced by the next in
//!   a seeded shuffle. Each opened session gets a new workload `session_id` (0, 1, ... in order
//!   of its first turn), so ids stay unique when the dataset is cycled.

use std::path::Path;
use std::sync::Arc;

use bench_types::image::SyntheticImage;

use bench_text::Tokenizer;
use bench_types::dataset::{DatasetRecord, parse_record};
use bench_types::{FormatError, jsonl};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// One prompt.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub text: Arc<str>,
    pub len: u32,
    pub output_length: Option<u32>,
    pub image_path: Option<Arc<str>>,
    pub images: Option<Arc<[SyntheticImage]>>,
    /// The named dataset it came from (`dataset` of its record).
    pub dataset: Option<Arc<str>>,
    pub fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// A plain prompt (one item, `session == false`) or a session's turns.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub items: Vec<Item>,
    pub session: bool,
}

/// Every prompt of the dataset.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    pub units: Vec<Unit>,
}

impl Pool {
    /// Total prompts (session turns included).
    pub(crate) fn num_prompts(&self) -> usize {
        self.units.iter().map(|u| u.items.len()).sum()
    }

    pub(crate) fn has_sessions(&self) -> bool {
        self.units.iter().any(|u| u.session)
    }

    /// Reads `path`, counting missing lengths with `tok` (in parallel).
    pub(crate) fn load(path: &Path, tok: &Tokenizer) -> Result<Pool, FormatError> {
        // (unit, item, is_output) -> text to count
        let mut pending: Vec<(usize, usize, bool, Arc<str>)> = Vec::new();
        let mut units = Vec::new();
        jsonl::for_each_line(path, jsonl::open(path)?, |n, line| {
            let u = units.len();
            let unit = match parse_record(path, n, line)? {
                DatasetRecord::Plain(p) => {
                    let text: Arc<str> = p.prompt.into();
                    if p.prompt_length.is_none() {
                        pending.push((u, 0, false, text.clone()));
                    }
                    let item = Item {
                        text,
                        len: p.prompt_length.unwrap_or(0),
                        output_length: p.output_length,
                        image_path: p.image_path.map(Into::into),
                        images: p.images.map(Into::into),
                        dataset: p.dataset.map(Into::into),
                        fields: p.fields.map(Arc::new),
                    };
                    Unit {
                        items: vec![item],
                        session: false,
                    }
                }
                DatasetRecord::Session(s) => {
                    let k = s.prompts.len();
                    let check = |what: &str, got: usize| {
                        if got == k {
                            Ok(())
                        } else {
                            Err(FormatError::parse(
                                path,
                                n,
                                format!("session {}: {k} prompts but {got} {what}", s.session_id),
                            ))
                        }
                    };
                    if let Some(l) = &s.prompt_lengths {
                        check("prompt_lengths", l.len())?;
                    }
                    if let Some(l) = &s.completion_lengths {
                        check("completion_lengths", l.len())?;
                    }
                    let mut items = Vec::with_capacity(k);
                    let dataset: Option<Arc<str>> = s.dataset.map(Into::into);
                    for (i, prompt) in s.prompts.into_iter().enumerate() {
                        let text: Arc<str> = prompt.into();
                        let len = s.prompt_lengths.as_ref().map(|l| l[i]);
                        if len.is_none() {
                            pending.push((u, i, false, text.clone()));
                        }
                        let out = s.completion_lengths.as_ref().map(|l| l[i]);
                        if out.is_none()
                            && let Some(c) = s.completions.as_ref().and_then(|c| c.get(i))
                        {
                            pending.push((u, i, true, c.as_str().into()));
                        }
                        items.push(Item {
                            text,
                            len: len.unwrap_or(0),
                            output_length: out,
                            image_path: None,
                            images: None,
                            dataset: dataset.clone(),
                            fields: None,
                        });
                    }
                    Unit {
                        items,
                        session: true,
                    }
                }
            };
            units.push(unit);
            Ok(())
        })?;
        let counts = count_parallel(tok, &pending);
        for ((u, i, is_out, _), c) in pending.iter().zip(counts) {
            let item = &mut units[*u].items[*i];
            if *is_out {
                item.output_length = Some(c);
            } else {
                item.len = c;
            }
        }
        Ok(Pool { units })
    }
}

fn count_parallel(tok: &Tokenizer, pending: &[(usize, usize, bool, Arc<str>)]) -> Vec<u32> {
    let count = |p: &[(usize, usize, bool, Arc<str>)]| {
        p.iter()
            .map(|x| tok.count(&x.3) as u32)
            .collect::<Vec<u32>>()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if pending.len() < 64 || threads == 1 {
        return count(pending);
    }
    let chunk = pending.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = pending
            .chunks(chunk)
            .map(|c| s.spawn(move || count(c)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("counting thread"))
            .collect()
    })
}

/// Closest-length lookup over every prompt of a pool.
pub(crate) struct Matcher {
    /// (length, unit, item), sorted by length.
    sorted: Vec<(u32, u32, u32)>,
}

impl Matcher {
    pub(crate) fn new(pool: &Pool) -> Self {
        let mut sorted: Vec<(u32, u32, u32)> = pool
            .units
            .iter()
            .enumerate()
            .flat_map(|(u, unit)| {
                unit.items
                    .iter()
                    .enumerate()
                    .map(move |(i, it)| (it.len, u as u32, i as u32))
            })
            .collect();
        sorted.sort_unstable();
        Matcher { sorted }
    }

    /// (unit, item) of a prompt closest to `target` tokens, ties at random.
    pub(crate) fn pick(&self, target: u32, rng: &mut StdRng) -> (usize, usize) {
        let s = &self.sorted;
        debug_assert!(!s.is_empty());
        let at = s.partition_point(|x| x.0 < target);
        let hi = s.get(at).map(|x| x.0);
        let lo = at.checked_sub(1).map(|i| s[i].0);
        let (from_len, to_len) = match (lo, hi) {
            (Some(l), Some(h)) if h - target < target - l => (h, h),
            (Some(l), Some(h)) if h - target == target - l => (l, h),
            (Some(l), _) => (l, l),
            (None, Some(h)) => (h, h),
            (None, None) => unreachable!("the pool is never empty"),
        };
        let a = s.partition_point(|x| x.0 < from_len);
        let b = s.partition_point(|x| x.0 <= to_len);
        let k = if b - a > 1 { rng.random_range(a..b) } else { a };
        (s[k].1 as usize, s[k].2 as usize)
    }
}

/// Draws prompts as they are (see the module docs).
pub(crate) struct Drawer {
    order: Vec<u32>,
    pos: usize,
    sessions: bool,
    max_active: usize,
    active: Vec<Open>,
    next_session_id: u64,
}

struct Open {
    unit: u32,
    next: u32,
    session_id: Option<u64>,
}

/// What the drawer returns: (unit, item, session (id, turn)).
pub(crate) type Drawn = (usize, usize, Option<(u64, u32)>);

impl Drawer {
    pub(crate) fn new(pool: &Pool, max_active: u32, rng: &mut StdRng) -> Self {
        let mut order: Vec<u32> = (0..pool.units.len() as u32).collect();
        order.shuffle(rng);
        Drawer {
            order,
            pos: 0,
            sessions: pool.has_sessions(),
            max_active: max_active.max(1) as usize,
            active: Vec::new(),
            next_session_id: 0,
        }
    }

    pub(crate) fn draw(&mut self, pool: &Pool, rng: &mut StdRng) -> Drawn {
        if !self.sessions {
            if self.pos == self.order.len() {
                self.order.shuffle(rng);
                self.pos = 0;
            }
            self.pos += 1;
            return (self.order[self.pos - 1] as usize, 0, None);
        }
        // A new cycle starts only when every unit of the last one is finished, so each turn is
        // used once per cycle.
        if self.active.is_empty() && self.pos == self.order.len() {
            self.order.shuffle(rng);
            self.pos = 0;
        }
        while self.active.len() < self.max_active && self.pos < self.order.len() {
            let unit = self.order[self.pos];
            self.pos += 1;
            let session_id = pool.units[unit as usize].session.then(|| {
                self.next_session_id += 1;
                self.next_session_id - 1
            });
            self.active.push(Open {
                unit,
                next: 0,
                session_id,
            });
        }
        let k = if self.active.len() > 1 {
            rng.random_range(0..self.active.len())
        } else {
            0
        };
        let o = &mut self.active[k];
        let (unit, item) = (o.unit as usize, o.next as usize);
        let session = o.session_id.map(|id| (id, o.next));
        o.next += 1;
        if o.next as usize == pool.units[unit].items.len() {
            // Keep the open order stable (remove, not swap_remove) so the choice is reproducible
            // and fair.
            self.active.remove(k);
        }
        (unit, item, session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn item(len: u32) -> Item {
        Item {
            text: format!("p{len}").into(),
            len,
            output_length: None,
            image_path: None,
            images: None,
            dataset: None,
            fields: None,
        }
    }

    fn plain(lens: &[u32]) -> Pool {
        Pool {
            units: lens
                .iter()
                .map(|&l| Unit {
                    items: vec![item(l)],
                    session: false,
                })
                .collect(),
        }
    }

    #[test]
    fn matcher_picks_closest_and_varies_ties() {
        let pool = plain(&[10, 20, 20, 20, 40, 100]);
        let m = Matcher::new(&pool);
        let mut rng = StdRng::seed_from_u64(1);
        let len = |p: (usize, usize)| pool.units[p.0].items[p.1].len;
        assert_eq!(len(m.pick(1, &mut rng)), 10);
        assert_eq!(len(m.pick(14, &mut rng)), 10);
        assert_eq!(len(m.pick(16, &mut rng)), 20);
        assert_eq!(len(m.pick(29, &mut rng)), 20);
        assert_eq!(len(m.pick(31, &mut rng)), 40);
        assert_eq!(len(m.pick(5000, &mut rng)), 100);
        // Three prompts of length 20: all get used.
        let seen: std::collections::HashSet<usize> =
            (0..100).map(|_| m.pick(20, &mut rng).0).collect();
        assert_eq!(seen, [1, 2, 3].into_iter().collect());
        // Equidistant (15: 10 and 20 both 5 away): both sides get used.
        let seen: std::collections::HashSet<u32> =
            (0..100).map(|_| len(m.pick(15, &mut rng))).collect();
        assert_eq!(seen, [10, 20].into_iter().collect());
    }

    #[test]
    fn plain_drawer_uses_every_prompt_once_per_cycle() {
        let pool = plain(&[1, 2, 3, 4, 5, 6, 7]);
        let mut rng = StdRng::seed_from_u64(2);
        let mut d = Drawer::new(&pool, 4, &mut rng);
        for _cycle in 0..3 {
            let mut got: Vec<usize> = (0..7).map(|_| d.draw(&pool, &mut rng).0).collect();
            got.sort();
            assert_eq!(got, [0, 1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn session_drawer_keeps_turn_order_bounds_open_sessions_and_unique_ids() {
        let pool = Pool {
            units: (0..10u32)
                .map(|s| Unit {
                    items: (0..=s % 4).map(|t| item(100 * s + t)).collect(),
                    session: true,
                })
                .collect(),
        };
        let total = pool.num_prompts();
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = Drawer::new(&pool, 3, &mut rng);
        let mut next_turn: std::collections::HashMap<u64, (usize, u32)> = Default::default();
        let mut open_max = 0;
        let mut used = std::collections::HashSet::new();
        for i in 0..2 * total {
            let (u, it, s) = d.draw(&pool, &mut rng);
            let (id, turn) = s.expect("session dataset gives session ids");
            assert_eq!(turn as usize, it);
            let e = next_turn.entry(id).or_insert((u, 0));
            assert_eq!(e.0, u, "a session id maps to one dataset session");
            assert_eq!(e.1, turn, "turns in order");
            e.1 += 1;
            let open = next_turn
                .iter()
                .filter(|(_, (u, t))| (*t as usize) < pool.units[*u].items.len() && *t > 0)
                .count();
            open_max = open_max.max(open);
            if i < total {
                assert!(used.insert((u, it)), "each turn once per cycle");
            }
        }
        assert!(open_max <= 3, "{open_max} sessions open at once");
        assert_eq!(
            next_turn.len(),
            20,
            "the second cycle opens new session ids"
        );
    }
}
