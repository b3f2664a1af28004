//! `server_metrics.parquet`: every sample of every /metrics scrape the client took during a
//! run, one row per sample, in long form.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `scrape` | UInt32 | scrape number, from 0 |
//! | `unix_ns` | Int64 | client wall clock when the scrape's answer arrived (ns since the epoch; minus the run's `anchor_unix_ns` it is on the records' time axis) |
//! | `metric` | Utf8 | the sample's name as exposed (`vllm:num_requests_running`, `..._bucket`) |
//! | `labels` | Utf8 | labels other than `le`/`quantile`, sorted, `k="v",...` |
//! | `le` | Float64, null | bucket bound (`_bucket` rows) or quantile |
//! | `value` | Float64 | the value |

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt32Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::FormatError;

/// The file's name in the run directory.
pub const FILE: &str = "server_metrics.parquet";

/// One sample of one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Scrape number.
    pub scrape: u32,
    /// Wall clock of the answer, ns since the epoch.
    pub unix_ns: i64,
    /// Sample name.
    pub metric: String,
    /// Other labels, canonical.
    pub labels: String,
    /// Bucket bound or quantile.
    pub le: Option<f64>,
    /// Value.
    pub value: f64,
}

/// The file's Arrow schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("scrape", DataType::UInt32, false),
        Field::new("unix_ns", DataType::Int64, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("le", DataType::Float64, true),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Writer properties: zstd, dictionary-encoded names (the default).
pub fn writer_properties(created_by: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(None)
        .set_created_by(created_by.to_string())
        .build()
}

/// `rows` as one record batch.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.scrape))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.unix_ns))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.metric.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.labels.as_str()),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.le))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
    ];
    RecordBatch::try_new(schema(), cols)
}

/// Reads every row of `path`.
pub fn read(path: &Path) -> Result<Vec<Row>, FormatError> {
    let bad = |m: String| FormatError::content(path, m);
    let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.map_err(|e| bad(e.to_string()))?;
        let col = |name: &str| -> Result<&ArrayRef, FormatError> {
            b.column_by_name(name)
                .ok_or_else(|| bad(format!("no column `{name}`")))
        };
        let typed = |name: &str, t: DataType| -> Result<&ArrayRef, FormatError> {
            let c = col(name)?;
            if c.data_type() == &t {
                Ok(c)
            } else {
                Err(bad(format!(
                    "column `{name}` is {}, expected {t}",
                    c.data_type()
                )))
            }
        };
        let scrape = typed("scrape", DataType::UInt32)?.as_primitive::<UInt32Type>();
        let unix = typed("unix_ns", DataType::Int64)?.as_primitive::<Int64Type>();
        let metric = typed("metric", DataType::Utf8)?.as_string::<i32>();
        let labels = typed("labels", DataType::Utf8)?.as_string::<i32>();
        let le = typed("le", DataType::Float64)?.as_primitive::<Float64Type>();
        let value = typed("value", DataType::Float64)?.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push(Row {
                scrape: scrape.value(i),
                unix_ns: unix.value(i),
                metric: metric.value(i).to_string(),
                labels: labels.value(i).to_string(),
                le: le.is_valid(i).then(|| le.value(i)),
                value: value.value(i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_a_file() {
        let rows = vec![
            Row {
                scrape: 0,
                unix_ns: 1_700_000_000_000_000_000,
                metric: "vllm:num_requests_running".into(),
                labels: "model_name=\"m\"".into(),
                le: None,
                value: 3.0,
            },
            Row {
                scrape: 1,
                unix_ns: 1_700_000_001_000_000_000,
                metric: "vllm:time_to_first_token_seconds_bucket".into(),
                labels: String::new(),
                le: Some(f64::INFINITY),
                value: 10.0,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(&p).unwrap(),
            schema(),
            Some(writer_properties("test")),
        )
        .unwrap();
        w.write(&to_batch(&rows).unwrap()).unwrap();
        w.close().unwrap();
        assert_eq!(read(&p).unwrap(), rows);
        let e = read(&dir.path().join("missing.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.parquet"), "{e}");
    }
}
