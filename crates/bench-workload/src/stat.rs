//! `stat`: Grafana CSV exports, one row per window.
//!
//! * Traffic: `"Time","Total","Success","4xx Error"` (maas; the rate is `Total` unless
//!   `rate_column` says otherwise: the offered load includes the requests that failed) or
//!   `"Time","<any name>"` (cloudide; the first non-time column). Requests per second, divided
//!   by `qps_scale`.
//! * Lengths (optional): `"Time","P50","P70","P90","P99"` (prompts) and
//!   `"Time","P50","P70","P95","P99"` (completions); any `P<n>` columns are read as percentiles.
//!   Same row count and times as the traffic file. Each request's lengths are drawn from its
//!   window's percentiles (see [`crate::quantiles`]), divided by `input_scale`/`output_scale`.
//! * Window `i` lasts until the next row's time (the last one as long as the one before) and
//!   starts at `(Time_i - Time_0) x time_scale`. With `exact_counts` it gets exactly its share
//!   `rate x length` of requests, rounded with carry (so the total is the rounded sum).
//! * Time is a date-time (`2024-10-1 00:00:00`, as Grafana writes it) or a Unix epoch in ms
//!   (or s, when below 10^11). Empty, `undefined`, `null` and `NaN` cells are missing values
//!   (rate 0; a window with requests but no percentiles is an error).

use std::path::Path;

use bench_config::Config;
use bench_config::workload::{Arrival, StatTraceType};
use bench_types::FormatError;
use rand::RngExt;

use crate::WorkloadError;
use crate::arrivals::{Process, RateCurve};
use crate::csv::{self, CsvFile, StringRecord, err};
use crate::datetime;
use crate::plan::{Demand, Generated, Want};
use crate::quantiles::{Quantiles, percentile_column};
use crate::seeds;

/// One row of a file: its line and time.
struct Row {
    line: usize,
    time_ns: i64,
}

/// A parsed length-percentile file: per window, the percentiles (None where every cell is
/// missing) and the line they came from.
struct LengthFile {
    path: std::path::PathBuf,
    quantiles: Vec<Option<Quantiles>>,
    lines: Vec<usize>,
}

/// A file's header row: its line, the column names, and the data records after it.
struct Header {
    line: usize,
    names: Vec<String>,
    rows: Vec<(usize, StringRecord)>,
}

struct Traffic {
    rows: Vec<Row>,
    rates: Vec<f64>,
    missing: u64,
}

pub(crate) fn generate(cfg: &Config) -> Result<Generated, WorkloadError> {
    let w = &cfg.workload;
    let s = &w.stat;
    let mut g = Generated::default();
    let traffic_path = s
        .traffic_file
        .as_deref()
        .ok_or_else(|| WorkloadError::Input {
            key: "workload.stat.traffic_file".into(),
            msg: "is required when workload.type is stat".into(),
        })?;
    let tp = Path::new(traffic_path);
    let traffic = read_traffic(
        tp,
        &open("workload.stat.traffic_file", tp)?,
        s.trace_type,
        s.rate_column.as_deref(),
    )?;
    g.inputs
        .push(("workload.stat.traffic_file".into(), tp.into()));
    let mut lengths =
        |key: &'static str, file: &Option<String>| -> Result<Option<LengthFile>, WorkloadError> {
            let Some(f) = file else { return Ok(None) };
            let p = Path::new(f);
            let (quantiles, lines) = read_lengths(p, &open(key, p)?, tp, &traffic.rows)?;
            g.inputs.push((key.into(), p.into()));
            Ok(Some(LengthFile {
                path: p.into(),
                quantiles,
                lines,
            }))
        };
    let prompt_q = lengths("workload.stat.prompt_len_file", &s.prompt_len_file)?;
    let completion_q = lengths("workload.stat.completion_len_file", &s.completion_len_file)?;

    // Windows, in replay time.
    let rows = &traffic.rows;
    let n = rows.len();
    let t0 = rows[0].time_ns;
    let scale = w.time_scale;
    let ms = |ns: i64| (ns - t0) as f64 * scale / 1e6;
    let last_step = rows[n - 1].time_ns - rows[n - 2].time_ns;
    let curve = RateCurve::new((0..n).map(|i| {
        let end_ns = if i + 1 < n {
            rows[i + 1].time_ns
        } else {
            rows[i].time_ns + last_step
        };
        // Requests per second of trace time = (rate / time_scale) per second of replay time.
        (
            ms(rows[i].time_ns),
            ms(end_ns),
            traffic.rates[i] / s.qps_scale / scale,
        )
    }));
    curve.check_size("workload.stat.traffic_file")?;
    let times = if s.exact_counts {
        curve.exact_count_arrivals(
            s.arrival != Arrival::Fixed,
            &mut seeds::rng(cfg.seed, seeds::ARRIVALS),
        )
    } else {
        curve.arrivals(
            Process::new(s.arrival, s.burstiness),
            &mut seeds::rng(cfg.seed, seeds::ARRIVALS),
        )
    };

    let mut rng = seeds::rng(cfg.seed, seeds::LENGTHS);
    let draw = |f: &Option<LengthFile>,
                k: usize,
                scale: f64,
                rng: &mut rand::rngs::StdRng|
     -> Result<Option<u32>, WorkloadError> {
        let Some(f) = f else { return Ok(None) };
        match &f.quantiles[k] {
            Some(q) => Ok(Some(q.draw(rng.random::<f64>(), scale))),
            None => Err(err(
                &f.path,
                f.lines[k],
                format!(
                    "no percentiles in a window with rate {} (line {} of the traffic file)",
                    traffic.rates[k], rows[k].line
                ),
            )
            .into()),
        }
    };
    let mut demands = Vec::with_capacity(times.len());
    for t_ms in times {
        let k = curve.segment_of(t_ms);
        let want = match draw(&prompt_q, k, s.input_scale, &mut rng)? {
            Some(l) => Want::Length(l),
            None => Want::AsIs,
        };
        let output_length = draw(&completion_q, k, s.output_scale, &mut rng)?;
        demands.push(Demand {
            t_ms,
            want,
            output_length,
        });
    }
    g.demands = demands;
    g.stat("windows", n as u64);
    g.stat("window_ms", last_step as f64 / 1e6);
    g.stat("duration_ms", ms(rows[n - 1].time_ns + last_step));
    g.stat("expected_requests", curve.total());
    g.stat("missing_values", traffic.missing);
    Ok(g)
}

fn open(key: &str, p: &Path) -> Result<CsvFile, WorkloadError> {
    CsvFile::read(p).map_err(|e| WorkloadError::Input {
        key: key.into(),
        msg: format!("{}: {e}", p.display()),
    })
}

/// A cell as a number; `None` when missing. Negative numbers are errors.
fn value(path: &Path, line: usize, col: &str, cell: &str) -> Result<Option<f64>, FormatError> {
    let c = cell.trim();
    if c.is_empty()
        || ["undefined", "null", "nan", "-"]
            .iter()
            .any(|m| c.eq_ignore_ascii_case(m))
    {
        return Ok(None);
    }
    match c.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        Ok(_) => Err(err(
            path,
            line,
            format!("column {col}: `{c}` is not a non-negative number"),
        )),
        Err(_) => Err(err(
            path,
            line,
            format!("column {col}: `{c}` is not a number"),
        )),
    }
}

/// The time of a row: a date-time, or a Unix epoch in ms (s when below 10^11).
fn time(path: &Path, line: usize, cell: &str) -> Result<i64, FormatError> {
    let c = cell.trim();
    if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) {
        let v: i64 = c
            .parse()
            .map_err(|_| err(path, line, format!("time `{c}` is out of range")))?;
        return Ok(if v < 100_000_000_000 {
            v * 1_000_000_000
        } else {
            v * 1_000_000
        });
    }
    datetime::parse_ns(c).map_err(|e| err(path, line, e))
}

/// The header row of `f` (must not look like data) and the rows after it.
fn header(path: &Path, f: &CsvFile) -> Result<Header, FormatError> {
    let mut rows = f.records(path).collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Err(err(
            path,
            0,
            "empty file (expected a header row and one row per window)",
        ));
    }
    let (hl, cells) = rows.remove(0);
    let names: Vec<String> = cells.iter().map(|c| c.trim().to_string()).collect();
    if names.iter().any(|n| n.parse::<f64>().is_ok()) {
        return Err(err(path, hl, "expected a header row (\"Time\",...) first"));
    }
    Ok(Header {
        line: hl,
        names,
        rows,
    })
}

fn read_traffic(
    path: &Path,
    f: &CsvFile,
    flavour: StatTraceType,
    rate_column: Option<&str>,
) -> Result<Traffic, FormatError> {
    let Header {
        line: hl,
        names,
        rows: lines,
    } = header(path, f)?;
    let cols = || names.iter().map(String::as_str);
    let tcol = csv::column(cols(), "Time").unwrap_or(0);
    let rcol = match (rate_column, flavour) {
        (Some(name), _) => csv::column(cols(), name),
        (None, StatTraceType::Maas) => csv::column(cols(), "Total"),
        (None, StatTraceType::Cloudide) => (0..names.len()).find(|&i| i != tcol),
    }
    .ok_or_else(|| {
        let want = rate_column.unwrap_or(match flavour {
            StatTraceType::Maas => "Total",
            StatTraceType::Cloudide => "a rate",
        });
        err(path, hl, format!("no `{want}` column (columns: {}); set workload.stat.rate_column or workload.stat.trace_type", names.join(", ")))
    })?;
    let mut t = Traffic {
        rows: Vec::new(),
        rates: Vec::new(),
        missing: 0,
    };
    for (line, cells) in lines {
        if cells.len() != names.len() {
            return Err(err(
                path,
                line,
                format!("{} fields, the header has {}", cells.len(), names.len()),
            ));
        }
        let time_ns = time(path, line, &cells[tcol])?;
        if let Some(prev) = t.rows.last()
            && time_ns <= prev.time_ns
        {
            return Err(err(
                path,
                line,
                format!(
                    "time `{}` is not after the previous row's",
                    cells[tcol].trim()
                ),
            ));
        }
        let rate = value(path, line, &names[rcol], &cells[rcol])?;
        t.missing += rate.is_none() as u64;
        t.rows.push(Row { line, time_ns });
        t.rates.push(rate.unwrap_or(0.0));
    }
    if t.rows.len() < 2 {
        return Err(err(
            path,
            0,
            format!(
                "{} data rows; at least 2 are needed to know the window length",
                t.rows.len()
            ),
        ));
    }
    Ok(t)
}

/// Percentiles per row (None where every cell is missing) and each row's line.
fn read_lengths(
    path: &Path,
    f: &CsvFile,
    traffic_path: &Path,
    traffic: &[Row],
) -> Result<(Vec<Option<Quantiles>>, Vec<usize>), FormatError> {
    let Header {
        line: hl,
        names,
        rows: lines,
    } = header(path, f)?;
    let tcol = csv::column(names.iter().map(String::as_str), "Time").unwrap_or(0);
    let pcols: Vec<(usize, f64)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| percentile_column(n).map(|q| (i, q)))
        .collect();
    if pcols.is_empty() {
        return Err(err(
            path,
            hl,
            format!(
                "no percentile columns (P50, P90, ...) among {}",
                names.join(", ")
            ),
        ));
    }
    if lines.len() != traffic.len() {
        return Err(err(
            path,
            0,
            format!(
                "{} data rows but the traffic file {} has {} (one row per window in both)",
                lines.len(),
                traffic_path.display(),
                traffic.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut line_nos = Vec::with_capacity(lines.len());
    for ((line, cells), row) in lines.into_iter().zip(traffic) {
        if cells.len() != names.len() {
            return Err(err(
                path,
                line,
                format!("{} fields, the header has {}", cells.len(), names.len()),
            ));
        }
        if time(path, line, &cells[tcol])? != row.time_ns {
            return Err(err(
                path,
                line,
                format!(
                    "time `{}` differs from the traffic file's row ({}:{})",
                    cells[tcol].trim(),
                    traffic_path.display(),
                    row.line
                ),
            ));
        }
        let mut knots = Vec::with_capacity(pcols.len());
        for &(i, q) in &pcols {
            if let Some(v) = value(path, line, &names[i], &cells[i])? {
                knots.push((q, v));
            }
        }
        out.push(if knots.is_empty() {
            None
        } else {
            Some(Quantiles::new(knots).map_err(|e| err(path, line, e))?)
        });
        line_nos.push(line);
    }
    Ok((out, line_nos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(text: &str, flavour: StatTraceType, col: Option<&str>) -> Result<Traffic, String> {
        read_traffic(Path::new("t.csv"), &CsvFile::from_text(text), flavour, col)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_flavours_and_number_forms() {
        let t = traffic("\"Time\",\"Total\",\"Success\",\"4xx Error\"\n2024-10-1 00:00:00,100,99,1\r\n2024-10-1 00:00:15,2.5,2.5,0\n2024-10-1 00:00:30,undefined,,0", StatTraceType::Maas, None).unwrap();
        assert_eq!(t.rates, [100.0, 2.5, 0.0]);
        assert_eq!(t.missing, 1);
        assert_eq!(t.rows[1].time_ns - t.rows[0].time_ns, 15_000_000_000);
        let t = traffic("\"Time\",\"sum(rate(requests{job=\"\"x\"\", a=\"\"b\"\"}))\"\n1700000000000,1\n1700000015000,3", StatTraceType::Cloudide, None).unwrap();
        assert_eq!(t.rates, [1.0, 3.0]);
        let t = traffic(
            "Time,Total,Success\n2024-10-1 00:00:00,5,4\n2024-10-1 00:00:15,7,6",
            StatTraceType::Maas,
            Some("success"),
        )
        .unwrap();
        assert_eq!(t.rates, [4.0, 6.0]);
    }

    #[test]
    fn traffic_errors_name_file_and_line() {
        let cases = [
            (
                "Time,Total\n2024-10-1 00:00:00,1\n2024-10-1 00:00:15,x\n",
                "t.csv:3: column Total: `x` is not a number",
            ),
            (
                "Time,Total\n2024-10-1 00:00:00,1\n2024-10-1 00:00:15,-2\n",
                "t.csv:3: column Total: `-2` is not a non-negative",
            ),
            (
                "Time,Total\n2024-10-1 00:00:00,1\n2024-10-1 00:00:00,1\n",
                "t.csv:3: time `2024-10-1 00:00:00` is not after",
            ),
            (
                "Time,Total\n2024-10-1 00:00:00,1\n2024-13-1 00:00:15,1\n",
                "t.csv:3: timestamp `2024-13-1 00:00:15`: bad month",
            ),
            (
                "Time,Total\n2024-10-1 00:00:00,1\n2024-10-1 00:00:15,1,9\n",
                "t.csv:3: 3 fields, the header has 2",
            ),
            (
                "Time,Rate\n2024-10-1 00:00:00,1\n2024-10-1 00:00:15,1\n",
                "t.csv:1: no `Total` column (columns: Time, Rate)",
            ),
            ("Time,Total\n2024-10-1 00:00:00,1\n", "t.csv:0: 1 data rows"),
            (
                "2024-10-1 00:00:00,1\n2024-10-1 00:00:15,1\n",
                "t.csv:1: expected a header row",
            ),
        ];
        for (text, want) in cases {
            let e = traffic(text, StatTraceType::Maas, None)
                .err()
                .unwrap_or_default();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn length_files_must_match_traffic_rows() {
        let t = traffic(
            "Time,Total\n2024-10-1 00:00:00,1\n2024-10-1 00:00:15,1\n",
            StatTraceType::Maas,
            None,
        )
        .unwrap();
        let read = |text: &str| {
            read_lengths(
                Path::new("p.csv"),
                &CsvFile::from_text(text),
                Path::new("t.csv"),
                &t.rows,
            )
            .map_err(|e| e.to_string())
        };
        let (q, _) = read("\"Time\",\"P50\",\"P70\",\"P90\",\"P99\"\n2024-10-1 00:00:00,388.0,397.9,1341.6,3656.3\n2024-10-1 00:00:15,0,0,0,0\n").unwrap();
        assert!((q[0].as_ref().unwrap().inverse(0.9) - 1341.6).abs() < 1e-9);
        let e = read("Time,P50\n2024-10-1 00:00:00,1\n").unwrap_err();
        assert!(
            e.contains("p.csv:0: 1 data rows but the traffic file t.csv has 2"),
            "{e}"
        );
        let e = read("Time,P50\n2024-10-1 00:00:00,1\n2024-10-1 00:00:16,1\n").unwrap_err();
        assert!(
            e.contains(
                "p.csv:3: time `2024-10-1 00:00:16` differs from the traffic file's row (t.csv:3)"
            ),
            "{e}"
        );
        let e = read("Time,P50,P90\n2024-10-1 00:00:00,5,4\n2024-10-1 00:00:15,1,1\n").unwrap_err();
        assert!(e.contains("p.csv:2: percentiles decrease"), "{e}");
        let e = read("Time,Mean\n2024-10-1 00:00:00,5\n2024-10-1 00:00:15,1\n").unwrap_err();
        assert!(e.contains("p.csv:1: no percentile columns"), "{e}");
    }
}
