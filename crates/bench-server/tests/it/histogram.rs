//! Bucket deltas and quantiles against hand-computed values.

use bench_server::expo::FlatSample;
use bench_server::histogram::{buckets, delta, mean, quantile};

const INF: f64 = f64::INFINITY;

/// 10 observations: 2 up to 0.1, 4 in (0.1, 0.5], 4 in (0.5, 1].
const TEN: [(f64, f64); 4] = [(0.1, 2.0), (0.5, 6.0), (1.0, 10.0), (INF, 10.0)];

#[test]
fn linear_interpolation_inside_the_bucket() {
    // p50: rank 5 lies in (0.1, 0.5], 3 of its 4 observations in: 0.1 + 3/4 * 0.4.
    assert_eq!(quantile(0.5, &TEN), Some(0.4));
    // p90: rank 9 lies in (0.5, 1], 3 of 4 in.
    assert_eq!(quantile(0.9, &TEN), Some(0.875));
    assert_eq!(quantile(1.0, &TEN), Some(1.0));
}

#[test]
fn the_lowest_bucket_is_interpolated_from_zero() {
    // p10: rank 1 of the 2 in (0, 0.1].
    assert_eq!(quantile(0.1, &TEN), Some(0.05));
    // A lowest bound at or below 0 is returned as is (Prometheus does the same).
    assert_eq!(
        quantile(0.5, &[(0.0, 3.0), (1.0, 4.0), (INF, 4.0)]),
        Some(0.0)
    );
    // q = 0: the lower edge of the first non-empty bucket.
    assert_eq!(quantile(0.0, &TEN), Some(0.0));
    assert_eq!(
        quantile(0.0, &[(0.1, 0.0), (0.5, 4.0), (INF, 4.0)]),
        Some(0.1)
    );
}

#[test]
fn a_rank_in_the_inf_bucket_is_the_highest_finite_bound() {
    let tail = [(0.1, 2.0), (0.5, 6.0), (1.0, 8.0), (INF, 10.0)];
    assert_eq!(quantile(0.9, &tail), Some(1.0));
    assert_eq!(quantile(1.0, &tail), Some(1.0));
    assert_eq!(quantile(0.8, &tail), Some(1.0));
    // Everything above the highest finite bound: every quantile is that bound.
    assert_eq!(quantile(0.0, &[(0.1, 0.0), (INF, 5.0)]), Some(0.1));
}

#[test]
fn none_when_there_is_nothing_to_estimate() {
    assert_eq!(quantile(0.5, &[]), None);
    assert_eq!(quantile(0.5, &[(0.1, 0.0), (INF, 0.0)]), None);
    // No finite bucket, no +Inf bucket.
    assert_eq!(quantile(0.5, &[(INF, 5.0)]), None);
    assert_eq!(quantile(0.5, &[(0.1, 1.0), (0.5, 2.0)]), None);
    for q in [-0.1, 1.1, f64::NAN, INF] {
        assert_eq!(quantile(q, &TEN), None, "{q}");
    }
}

#[test]
fn unsorted_duplicate_and_non_monotone_buckets() {
    // Sorted first; equal bounds add up (two series' `le="0.5"` and `le="0.50"`).
    let messy = [(INF, 10.0), (0.5, 3.0), (0.1, 2.0), (0.5, 3.0), (1.0, 10.0)];
    assert_eq!(quantile(0.5, &messy), Some(0.4));
    // A count below its predecessor is raised to it, as Prometheus does.
    let dip = [(0.1, 5.0), (0.5, 4.0), (1.0, 10.0), (INF, 10.0)];
    assert_eq!(quantile(0.5, &dip), Some(0.1));
    // NaN bounds and counts are left out.
    let nan = [
        (f64::NAN, 3.0),
        (0.1, 2.0),
        (0.5, f64::NAN),
        (0.5, 6.0),
        (1.0, 10.0),
        (INF, 10.0),
    ];
    assert_eq!(quantile(0.5, &nan), Some(0.4));
}

#[test]
fn delta_is_the_increase_bound_by_bound() {
    let first = [(0.1, 1.0), (0.5, 3.0), (1.0, 3.0), (INF, 4.0)];
    let last = [(0.1, 3.0), (0.5, 9.0), (1.0, 13.0), (INF, 14.0)];
    assert_eq!(delta(&first, &last), TEN);
    assert_eq!(quantile(0.5, &delta(&first, &last)), Some(0.4));
    // No change: all zero, and no quantile.
    assert_eq!(
        delta(&last, &last),
        [(0.1, 0.0), (0.5, 0.0), (1.0, 0.0), (INF, 0.0)]
    );
    assert_eq!(quantile(0.5, &delta(&last, &last)), None);
    // A histogram first seen at the end (a label set observed for the first time) counts from 0,
    // and so does a bound missing in `first`.
    assert_eq!(delta(&[], &last), last);
    assert_eq!(
        delta(
            &[(0.5, 1.0), (INF, 1.0)],
            &[(0.1, 1.0), (0.5, 2.0), (INF, 2.0)]
        ),
        [(0.1, 1.0), (0.5, 1.0), (INF, 1.0)]
    );
    // Sorted by bound whatever the input order.
    assert_eq!(
        delta(&[], &[(INF, 2.0), (0.1, 1.0)]),
        [(0.1, 1.0), (INF, 2.0)]
    );
}

#[test]
fn a_counter_reset_returns_last_whole() {
    let first = [(0.1, 5.0), (INF, 10.0)];
    let restarted = [(0.1, 1.0), (INF, 3.0)];
    assert_eq!(delta(&first, &restarted), restarted);
    // Only the total went down.
    let last = [(0.1, 6.0), (INF, 7.0)];
    assert_eq!(delta(&first, &last), last);
    // A bound of `first` gone from `last`: restarted with other buckets.
    let rebucketed = [(0.2, 11.0), (INF, 12.0)];
    assert_eq!(delta(&first, &rebucketed), rebucketed);
}

#[test]
fn mean_of_sum_and_count_deltas() {
    assert_eq!(mean(3.0, 2.0), Some(1.5));
    assert_eq!(mean(1.0, 0.0), None);
    assert_eq!(mean(0.0, 0.0), None);
    assert_eq!(mean(f64::NAN, 2.0), None);
}

#[test]
fn buckets_add_up_label_sets() {
    let row = |metric: &str, labels: &str, le: Option<f64>, value: f64| FlatSample {
        metric: metric.to_owned(),
        labels: labels.to_owned(),
        le,
        value,
    };
    let samples = [
        row("ttft_bucket", r#"engine="0""#, Some(0.1), 1.0),
        row("ttft_bucket", r#"engine="0""#, Some(INF), 4.0),
        row("ttft_bucket", r#"engine="1""#, Some(INF), 6.0),
        row("ttft_bucket", r#"engine="1""#, Some(0.1), 2.0),
        row("ttft_sum", r#"engine="0""#, None, 9.0),
        row("ttft_count", r#"engine="0""#, None, 4.0),
        row("ttft2_bucket", "", Some(0.1), 100.0),
        row("ttft_bucket", "", None, 100.0),
    ];
    assert_eq!(buckets(&samples, "ttft"), [(0.1, 3.0), (INF, 10.0)]);
    assert_eq!(buckets(&samples, "nothing"), []);
}
