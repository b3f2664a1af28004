//! requests.parquet, written so that it is a complete, readable Parquet file at every instant.
//!
//! Rows go to a hidden *live* file through one long-lived `ArrowWriter` (one row group per
//! flush). A Parquet file is only readable with its footer, which `ArrowWriter` writes once at
//! close, so after each flush the writer makes a *snapshot*: the live file's bytes so far are
//! copied in the kernel (`copy_file_range`) to a temporary file, a footer describing every row
//! group flushed so far is appended, and the temporary file is renamed over requests.parquet
//! (atomic). Readers therefore always see the previous or the new complete file, never a torn
//! one, whenever the process dies. At the end the footer is appended to the live file itself,
//! which becomes requests.parquet (no copy).
//!
//! A snapshot copies the whole file, so the interval between flushes grows to at least 20x the
//! time the last snapshot took (a 10 MB file copies in a few ms: the interval stays at
//! `client.flush_interval_s`).
//!
//! Out of file descriptors (a run with more sockets than `ulimit -n` allows) the writer loses
//! nothing: it holds every descriptor it needs from the start (the live file to write, the same
//! file to read for the copy, and the next snapshot's temporary file, created again right after
//! each rename), so a snapshot never opens a file, and finishing (footer, rename) needs none.
//! When the next temporary file cannot be created, that snapshot is skipped and tried again at
//! the next flush; the caller reports it.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bench_types::record::schema::{schema, writer_properties};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata};
use parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataWriter};
use parquet::file::properties::WriterProperties;

/// The incremental Parquet writer.
pub struct ParquetOut {
    path: PathBuf,
    live_path: PathBuf,
    tmp_path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    /// The live file again, for reading (the copy of a snapshot).
    live_reader: File,
    /// The next snapshot's temporary file, created ahead.
    next_tmp: Option<File>,
    props: WriterProperties,
    schema_descr: Arc<parquet::schema::types::SchemaDescriptor>,
    /// Key-value metadata of every footer: the Arrow schema, then `user_kv`.
    kv: Vec<KeyValue>,
    /// The caller's key-value metadata (anchor, ...).
    user_kv: Vec<KeyValue>,
    rows: u64,
    /// How long the last snapshot took.
    pub last_snapshot: Duration,
}

impl std::fmt::Debug for ParquetOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetOut")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

impl ParquetOut {
    /// Starts the live file next to `path` (removing an older `path`, so a stale file from an
    /// earlier run is never mistaken for this one's).
    pub fn create(path: &Path, kv: Vec<KeyValue>) -> Result<Self, String> {
        let props = writer_properties(concat!(
            "bench-client ",
            env!("CARGO_PKG_VERSION"),
            " (parquet-rs)"
        ));
        Self::create_with(path, &schema(), props, kv)
    }

    /// [`create`](Self::create) for any schema (server_metrics.parquet).
    pub fn create_with(
        path: &Path,
        schema: &SchemaRef,
        props: WriterProperties,
        kv: Vec<KeyValue>,
    ) -> Result<Self, String> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "requests.parquet".into());
        let live_path = dir.join(format!(".{name}.live"));
        let tmp_path = dir.join(format!(".{name}.tmp"));
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(path, e)),
        }
        let file = File::create(&live_path).map_err(|e| err(&live_path, e))?;
        let live_reader = File::open(&live_path).map_err(|e| err(&live_path, e))?;
        let next_tmp = Some(File::create(&tmp_path).map_err(|e| err(&tmp_path, e))?);
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))
            .map_err(|e| err(&live_path, e))?;
        let schema_descr = Arc::new(
            ArrowSchemaConverter::new()
                .convert(schema)
                .map_err(|e| err(path, e))?,
        );
        let mut with_arrow = props.clone();
        add_encoded_arrow_schema_to_metadata(schema, &mut with_arrow);
        let mut all_kv = with_arrow.key_value_metadata().cloned().unwrap_or_default();
        all_kv.extend(kv.iter().cloned());
        Ok(ParquetOut {
            path: path.to_path_buf(),
            live_path,
            tmp_path,
            writer: Some(writer),
            live_reader,
            next_tmp,
            props,
            schema_descr,
            kv: all_kv,
            user_kv: kv,
            rows: 0,
            last_snapshot: Duration::ZERO,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes `batch` as a new row group (nothing is readable until [`snapshot`](Self::snapshot)).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| err(&self.path, "already finished"))?;
        w.write(batch).map_err(|e| err(&self.live_path, e))?;
        w.flush().map_err(|e| err(&self.live_path, e))?;
        w.sync().map_err(|e| err(&self.live_path, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn metadata(&self, extra: &[KeyValue]) -> ParquetMetaData {
        let w = self.writer.as_ref().expect("writer present");
        let groups = w.flushed_row_groups().to_vec();
        let num_rows = groups.iter().map(|g| g.num_rows()).sum();
        let mut kv = self.kv.clone();
        kv.extend_from_slice(extra);
        let fm = FileMetaData::new(
            self.props.writer_version().as_num(),
            num_rows,
            Some(self.props.created_by().to_string()),
            Some(kv),
            self.schema_descr.clone(),
            None,
        );
        ParquetMetaData::new(fm, groups)
    }

    /// Replaces requests.parquet with a complete file holding every row written so far. An
    /// error leaves the previous snapshot in place and the writer usable: call again later.
    pub fn snapshot(&mut self, extra_kv: &[KeyValue]) -> Result<(), String> {
        let t0 = Instant::now();
        let w = self
            .writer
            .as_ref()
            .ok_or_else(|| err(&self.path, "already finished"))?;
        let len = w.bytes_written() as u64;
        let md = self.metadata(extra_kv);
        let mut tmp = match self.next_tmp.take() {
            Some(f) => f,
            None => File::create(&self.tmp_path).map_err(|e| err(&self.tmp_path, e))?,
        };
        // whatever happens below, this handle is the temporary file to use next time
        let result = self.fill(&mut tmp, len, &md);
        if result.is_err() {
            self.next_tmp = Some(tmp);
            return result;
        }
        drop(tmp);
        std::fs::rename(&self.tmp_path, &self.path).map_err(|e| err(&self.path, e))?;
        self.next_tmp = File::create(&self.tmp_path).ok();
        self.last_snapshot = t0.elapsed();
        Ok(())
    }

    /// Writes the first `len` bytes of the live file and a footer `md` into `tmp`.
    fn fill(&mut self, tmp: &mut File, len: u64, md: &ParquetMetaData) -> Result<(), String> {
        use std::io::Seek;
        tmp.set_len(0).map_err(|e| err(&self.tmp_path, e))?;
        tmp.rewind().map_err(|e| err(&self.tmp_path, e))?;
        self.live_reader
            .rewind()
            .map_err(|e| err(&self.live_path, e))?;
        let copied = std::io::copy(&mut (&self.live_reader).take(len), tmp)
            .map_err(|e| err(&self.tmp_path, e))?;
        if copied != len {
            return Err(err(
                &self.live_path,
                format!("short copy ({copied} of {len} bytes)"),
            ));
        }
        let mut out = BufWriter::new(tmp);
        ParquetMetaDataWriter::new(&mut out, md)
            .with_preserve_page_index_locations(false)
            .finish()
            .map_err(|e| err(&self.tmp_path, e))?;
        out.flush().map_err(|e| err(&self.tmp_path, e))?;
        Ok(())
    }

    /// Closes the live file (parquet writes its own footer) and moves it to requests.parquet.
    pub fn finish(mut self, extra_kv: &[KeyValue]) -> Result<u64, String> {
        let mut w = self.writer.take().expect("writer present");
        for kv in self.user_kv.iter().chain(extra_kv) {
            w.append_key_value_metadata(kv.clone());
        }
        w.close().map_err(|e| err(&self.live_path, e))?;
        std::fs::rename(&self.live_path, &self.path).map_err(|e| err(&self.path, e))?;
        let _ = std::fs::remove_file(&self.tmp_path);
        Ok(self.rows)
    }
}

impl Drop for ParquetOut {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp_path);
        if let Some(w) = self.writer.take() {
            // Not finished (an error path): close what was written into a complete file when
            // the writer can (it needs no new descriptor), else keep the last snapshot.
            match w.close() {
                Ok(_) => {
                    let _ = std::fs::rename(&self.live_path, &self.path);
                }
                Err(_) => {
                    let _ = std::fs::remove_file(&self.live_path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_types::RequestStatus;
    use bench_types::record::RequestRecord;
    use bench_types::record::read::read_rows as read_records;
    use bench_types::record::schema::to_batch;

    fn row(id: u64, chunks: usize) -> RequestRecord {
        RequestRecord {
            http_status: Some(200),
            ready_ns: Some(1_100),
            sent_ns: Some(1_200),
            first_byte_ns: Some(1_300),
            first_token_ns: Some(1_400),
            end_ns: Some(2_000),
            chunk_ns: (0..chunks as i64).map(|c| 1_400 + c).collect(),
            prompt_tokens: Some(3),
            output_tokens: Some(chunks as u32),
            max_tokens: Some(8),
            finish_reason: Some("length".into()),
            stream: true,
            ..RequestRecord::new(id, 1_000 + id as i64, RequestStatus::Ok)
        }
    }

    /// After every snapshot the file is complete and holds every row written so far; an
    /// unfinished writer (crash, error) leaves the last snapshot; finish closes it for good.
    #[test]
    fn every_snapshot_is_a_readable_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("requests.parquet");
        std::fs::write(&path, b"stale file from an earlier run").unwrap();
        let kv = vec![KeyValue::new("bench.test".to_string(), "1".to_string())];
        let mut out = ParquetOut::create(&path, kv).unwrap();
        assert!(!path.exists(), "an earlier run's file is removed at start");
        let mut id = 0;
        for flush in 1..=4u64 {
            let rows: Vec<RequestRecord> = (0..50)
                .map(|_| {
                    id += 1;
                    row(id, (id % 7) as usize)
                })
                .collect();
            out.write(&to_batch(&rows, 1_000).unwrap()).unwrap();
            out.snapshot(&[KeyValue::new(
                "bench.complete".to_string(),
                "false".to_string(),
            )])
            .unwrap();
            let (back, meta) = read_records(&path).unwrap();
            assert_eq!(back.len() as u64, flush * 50);
            assert_eq!(back[7].scheduled_ns, 8, "shifted to the anchor");
            assert_eq!(back[7].chunk_ns.len(), 1);
            assert!(
                meta.iter()
                    .any(|(k, v)| k == "bench.complete" && v == "false")
            );
            assert!(meta.iter().any(|(k, v)| k == "bench.test" && v == "1"));
        }
        // One more batch written but not snapshotted, then the writer is dropped unfinished (an
        // error path): it closes what was written, so nothing is lost.
        out.write(&to_batch(&[row(999, 3)], 0).unwrap()).unwrap();
        drop(out);
        let (back, _) = read_records(&path).unwrap();
        assert_eq!(back.len(), 201);
        assert!(!d.path().join(".requests.parquet.live").exists());
        assert!(!d.path().join(".requests.parquet.tmp").exists());

        let mut out = ParquetOut::create(&path, vec![]).unwrap();
        out.write(&to_batch(&[row(1, 2), row(2, 0)], 0).unwrap())
            .unwrap();
        out.snapshot(&[]).unwrap();
        out.write(&to_batch(&[row(3, 5)], 0).unwrap()).unwrap();
        assert_eq!(
            out.finish(&[KeyValue::new(
                "bench.complete".to_string(),
                "true".to_string()
            )])
            .unwrap(),
            3
        );
        let (back, meta) = read_records(&path).unwrap();
        assert_eq!(
            back.iter().map(|r| r.request_id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(
            meta.iter()
                .any(|(k, v)| k == "bench.complete" && v == "true")
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary files left"
        );
    }
}
