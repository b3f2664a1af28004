//! The split of one workload into shards: which shard sends which request.
//!
//! One function, used by the client (to send its part) and by `bench merge` (to know which
//! requests a dead shard owed). The split depends on the workload file and the shard count
//! only, so every process computes the same one without talking to the others.
//!
//! The unit is a *chain*: a whole session (every request with its `session_id`, wherever it is
//! in the file), or one request without a session. Chains are taken in order of their first
//! request's time (then file position), and each goes to the shard with the least load so far
//! (ties to the lowest index). The load of a chain counts its requests and its tokens (prompt
//! plus output length) with equal weight: `tokens * R + requests * T` for a workload of `R`
//! requests and `T` tokens, in integers, so every machine computes the very same split. At
//! every point of the schedule the shards' loads so far differ by at most one chain's load: the
//! split is balanced over time, not only in total.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::Workload;

/// The shard (0..count) of every request of `wl`, in file order (entry order, then request
/// order: the order of the client's request ids). `count` must be at least 1.
pub fn assign(wl: &Workload, count: u32) -> Vec<u32> {
    let count = count.max(1);
    // chains: (first timestamp, first id, request ids, tokens)
    let mut chains: Vec<(f64, usize, Vec<usize>, u64)> = Vec::new();
    let mut session_chain: HashMap<u64, usize> = HashMap::new();
    let mut id = 0usize;
    let mut total_tokens = 0u64;
    for e in &wl.entries {
        for r in &e.requests {
            let tokens =
                u64::from(r.prompt_length.unwrap_or(0)) + u64::from(r.output_length.unwrap_or(0));
            total_tokens += tokens;
            let k = match r.session_id {
                Some(s) => *session_chain.entry(s).or_insert_with(|| {
                    chains.push((e.timestamp, id, Vec::new(), 0));
                    chains.len() - 1
                }),
                None => {
                    chains.push((e.timestamp, id, Vec::new(), 0));
                    chains.len() - 1
                }
            };
            let c = &mut chains[k];
            if e.timestamp < c.0 {
                c.0 = e.timestamp;
            }
            c.2.push(id);
            c.3 += tokens;
            id += 1;
        }
    }
    let total_requests = id as u128;
    chains.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = vec![0u32; id];
    let mut heap: BinaryHeap<Reverse<(u128, u32)>> = (0..count).map(|i| Reverse((0, i))).collect();
    for (_, _, ids, tokens) in &chains {
        let load = if total_tokens == 0 {
            ids.len() as u128
        } else {
            u128::from(*tokens) * total_requests + ids.len() as u128 * u128::from(total_tokens)
        };
        let Reverse((so_far, shard)) = heap.pop().expect("count >= 1");
        for &i in ids {
            out[i] = shard;
        }
        heap.push(Reverse((so_far + load, shard)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{WorkloadEntry, WorkloadRequest};

    fn wl(n: usize, session_every: usize) -> Workload {
        let entries = (0..n)
            .map(|i| WorkloadEntry {
                timestamp: i as f64 * 10.0,
                requests: vec![WorkloadRequest {
                    prompt: Some("p".into()),
                    prompt_length: Some(100 + (i as u32 * 37) % 900),
                    output_length: Some(10 + (i as u32 * 13) % 200),
                    session_id: (session_every > 0 && i % session_every == 0)
                        .then_some((i / 50) as u64),
                    ..Default::default()
                }],
            })
            .collect();
        Workload {
            header: None,
            entries,
        }
    }

    #[test]
    fn every_request_once_sessions_whole_loads_balanced() {
        let w = wl(10_000, 3);
        for count in [1u32, 2, 3, 7, 16] {
            let a = assign(&w, count);
            assert_eq!(a.len(), 10_000);
            assert!(a.iter().all(|&s| s < count));
            // sessions whole
            let mut seen: HashMap<u64, u32> = HashMap::new();
            let reqs = w.entries.iter().flat_map(|e| &e.requests);
            for (r, &s) in reqs.clone().zip(&a) {
                if let Some(sid) = r.session_id {
                    assert_eq!(*seen.entry(sid).or_insert(s), s, "session {sid} split");
                }
            }
            // requests and tokens within a few percent of an even share
            let mut n = vec![0u64; count as usize];
            let mut t = vec![0u64; count as usize];
            for (r, &s) in reqs.zip(&a) {
                n[s as usize] += 1;
                t[s as usize] += u64::from(r.prompt_length.unwrap() + r.output_length.unwrap());
            }
            let even_n = 10_000.0 / f64::from(count);
            let even_t = t.iter().sum::<u64>() as f64 / f64::from(count);
            for s in 0..count as usize {
                assert!(
                    (n[s] as f64 - even_n).abs() <= 0.03 * even_n,
                    "{count} shards: requests {n:?}"
                );
                assert!(
                    (t[s] as f64 - even_t).abs() <= 0.03 * even_t,
                    "{count} shards: tokens {t:?}"
                );
            }
            assert_eq!(assign(&w, count), a, "deterministic");
        }
        assert_eq!(assign(&w, 1), vec![0; 10_000]);
    }

    #[test]
    fn balanced_over_time_too() {
        let w = wl(4_000, 0);
        let a = assign(&w, 4);
        // every window of 400 consecutive requests spreads over the shards within ~10%
        for win in a.chunks(400) {
            let mut n = [0u32; 4];
            for &s in win {
                n[s as usize] += 1;
            }
            assert!(n.iter().all(|&k| (85..=115).contains(&k)), "{n:?}");
        }
    }
}
