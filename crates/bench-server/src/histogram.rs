//! Quantiles of a server-side histogram over a run: the bucket increase between the scrapes at
//! the ends of the run window, then `histogram_quantile`'s interpolation.
//!
//! [`quantile`] follows Prometheus' `BucketQuantile` (promql/quantile.go): buckets sorted by
//! bound, equal bounds added together, counts forced monotone, linear interpolation inside the
//! bucket holding the rank, the lowest bucket from 0 (when its bound is above 0), and the highest
//! finite bound for a rank in the `+Inf` bucket. Two departures, both where Prometheus returns
//! NaN: here that is `None`, and `q = 0` gives the lower edge of the first non-empty bucket
//! (Prometheus divides 0 by 0 when the lowest bucket is empty). The estimate is only as good as
//! the buckets: the true quantile lies somewhere in the bucket returned from, so the error is
//! bounded by that bucket's width, and it is unbounded above the highest finite bound.

use crate::expo::FlatSample;

/// Cumulative buckets (upper bound, cumulative count), sorted by bound, the last normally +Inf.
pub type Buckets = Vec<(f64, f64)>;

/// The per-bucket increase between two scrapes of the same histogram (`last - first`, bound by
/// bound; a bound missing in `first` counts from 0). A counter reset (any count going down, or
/// the total going down) means the server restarted: `last` is returned whole, as it is when a
/// bound of `first` is missing from `last` (a restart with other buckets). Bounds are matched
/// exactly (f64 equality of the parsed bounds).
pub fn delta(first: &[(f64, f64)], last: &[(f64, f64)]) -> Buckets {
    let total = |b: &[(f64, f64)]| b.iter().map(|&(_, c)| c).fold(0.0, f64::max);
    let reset = total(last) < total(first)
        || first.iter().any(|&(bound, before)| {
            last.iter()
                .find(|&&(b, _)| b == bound)
                .is_none_or(|&(_, after)| after < before)
        });
    let mut out: Buckets = if reset {
        last.to_vec()
    } else {
        last.iter()
            .map(|&(bound, after)| {
                let before = first
                    .iter()
                    .find(|&&(b, _)| b == bound)
                    .map_or(0.0, |&(_, c)| c);
                (bound, after - before)
            })
            .collect()
    };
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The q-quantile (0..=1) of a cumulative histogram the way Prometheus' `histogram_quantile`
/// does it: linear interpolation inside the bucket, the lowest bucket interpolated from 0 when
/// its bound is > 0, a quantile in the +Inf bucket returns the highest finite bound. None when the
/// total count is 0, there are no finite buckets, there is no +Inf bucket, or q is outside `[0, 1]`.
/// Buckets with a NaN bound or count are ignored.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted: Buckets = buckets
        .iter()
        .copied()
        .filter(|(b, c)| !b.is_nan() && !c.is_nan())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Equal bounds (`le="1"` and `le="1.0"` of two series) add up; counts are made monotone.
    let mut coalesced: Buckets = Vec::with_capacity(sorted.len());
    for (bound, count) in sorted {
        match coalesced.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => coalesced.push((bound, count)),
        }
    }
    for i in 1..coalesced.len() {
        coalesced[i].1 = coalesced[i].1.max(coalesced[i - 1].1);
    }
    let buckets = coalesced;
    if buckets.len() < 2 || buckets[buckets.len() - 1].0 != f64::INFINITY {
        return None;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations <= 0.0 {
        return None;
    }
    let mut rank = q * observations;
    let finite = &buckets[..buckets.len() - 1];
    // The first bucket reaching the rank; for q = 0, the first one holding any observation.
    let Some(b) = finite.iter().position(|&(_, c)| c >= rank && c > 0.0) else {
        return Some(finite[finite.len() - 1].0);
    };
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (end, mut count) = buckets[b];
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    Some(start + (end - start) * (rank / count))
}

/// The mean from the deltas of `_sum` and `_count` (None when the count is not above 0 or either
/// is not finite).
pub fn mean(sum_delta: f64, count_delta: f64) -> Option<f64> {
    (count_delta > 0.0 && count_delta.is_finite() && sum_delta.is_finite())
        .then(|| sum_delta / count_delta)
}

/// Groups the `_bucket` FlatSamples of one family and one label set into Buckets (sorted by le);
/// other label sets are summed bound by bound (so `engine="0"` and `engine="1"` add up). Empty
/// when the family has no `_bucket` row.
pub fn buckets(samples: &[FlatSample], family: &str) -> Buckets {
    let name = format!("{family}_bucket");
    let mut out: Buckets = Vec::new();
    for s in samples.iter().filter(|s| s.metric == name) {
        let Some(bound) = s.le else { continue };
        match out.iter_mut().find(|(b, _)| *b == bound) {
            Some(slot) => slot.1 += s.value,
            None => out.push((bound, s.value)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}
