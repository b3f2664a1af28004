//! Writing `dataset.jsonl`: counts, an atomic rename, and ordered parallel generation.
//!
//! Records are serialized with [`bench_types::jsonl::write_line`], the same writer
//! [`bench_types::dataset::write`] uses, so the file reads back with
//! [`bench_types::dataset::read`]. The file is written to `dataset.jsonl.tmp` and renamed on
//! success, so a failed run never leaves a half-written dataset for the next stage.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use bench_types::jsonl::{self, FormatError};
use bench_types::{DatasetRecord, files};

use crate::DatasetError;
use crate::decor::Decor;

/// Running totals of what was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Lines written.
    pub records: u64,
    /// Prompts (a session counts its turns).
    pub prompts: u64,
    /// Session records.
    pub sessions: u64,
    /// Sum of prompt lengths (tokens).
    pub prompt_tokens: u64,
    /// Sum of output lengths / reference reply lengths (tokens), where known.
    pub output_tokens: u64,
    /// Bytes written.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, rec: &DatasetRecord, bytes: usize) {
        self.records += 1;
        self.bytes += bytes as u64;
        match rec {
            DatasetRecord::Plain(p) => {
                self.prompts += 1;
                self.prompt_tokens += u64::from(p.prompt_length.unwrap_or(0));
                self.output_tokens += u64::from(p.output_length.unwrap_or(0));
            }
            DatasetRecord::Session(s) => {
                self.sessions += 1;
                self.prompts += s.prompts.len() as u64;
                self.prompt_tokens += s
                    .prompt_lengths
                    .iter()
                    .flatten()
                    .map(|&n| u64::from(n))
                    .sum::<u64>();
                self.output_tokens += s
                    .completion_lengths
                    .iter()
                    .flatten()
                    .map(|&n| u64::from(n))
                    .sum::<u64>();
            }
        }
    }

    fn merge(&mut self, o: &Totals) {
        self.records += o.records;
        self.prompts += o.prompts;
        self.sessions += o.sessions;
        self.prompt_tokens += o.prompt_tokens;
        self.output_tokens += o.output_tokens;
        self.bytes += o.bytes;
    }
}

/// Serializes `rec` as one line onto `buf` and counts it.
fn encode(
    path: &Path,
    rec: &DatasetRecord,
    buf: &mut Vec<u8>,
    t: &mut Totals,
) -> Result<(), FormatError> {
    let start = buf.len();
    jsonl::write_line(path, buf, rec)?;
    t.add(rec, buf.len() - start);
    Ok(())
}

/// Writer of `<run_dir>/dataset.jsonl`.
pub(crate) struct DatasetWriter {
    path: PathBuf,
    tmp: PathBuf,
    w: BufWriter<File>,
    totals: Totals,
    buf: Vec<u8>,
    /// Renamed into place: nothing to clean up.
    done: bool,
    /// Images and template added to every record.
    decor: Option<Arc<Decor>>,
}

impl DatasetWriter {
    /// Creates the temporary file in `run_dir`.
    pub(crate) fn create(run_dir: &Path) -> Result<Self, DatasetError> {
        let path = run_dir.join(files::DATASET);
        let tmp = run_dir.join(format!("{}.tmp", files::DATASET));
        let w = jsonl::create(&tmp)?;
        Ok(DatasetWriter {
            path,
            tmp,
            w,
            totals: Totals::default(),
            buf: Vec::with_capacity(1 << 16),
            done: false,
            decor: None,
        })
    }

    /// Adds `decor` to every record written from now on.
    pub(crate) fn set_decor(&mut self, decor: Option<Decor>) {
        self.decor = decor.map(Arc::new);
    }

    fn decorated(
        decor: &Option<Arc<Decor>>,
        rec: DatasetRecord,
        index: u64,
    ) -> Result<DatasetRecord, DatasetError> {
        match decor {
            Some(d) => d.apply(rec, index),
            None => Ok(rec),
        }
    }

    /// Writes one record.
    pub(crate) fn write(&mut self, rec: &DatasetRecord) -> Result<(), DatasetError> {
        self.buf.clear();
        let owned;
        let rec = match &self.decor {
            Some(d) => {
                owned = d.apply(rec.clone(), self.totals.records)?;
                &owned
            }
            None => rec,
        };
        encode(&self.tmp, rec, &mut self.buf, &mut self.totals)?;
        self.w
            .write_all(&self.buf)
            .map_err(|e| FormatError::io(&self.tmp, e))?;
        Ok(())
    }

    fn write_encoded(&mut self, bytes: &[u8], t: &Totals) -> Result<(), DatasetError> {
        self.w
            .write_all(bytes)
            .map_err(|e| FormatError::io(&self.tmp, e))?;
        self.totals.merge(t);
        Ok(())
    }

    /// Flushes, renames into place, and returns the totals.
    pub(crate) fn finish(mut self) -> Result<Totals, DatasetError> {
        self.w.flush().map_err(|e| FormatError::io(&self.tmp, e))?;
        self.w
            .get_ref()
            .sync_all()
            .map_err(|e| FormatError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| FormatError::io(&self.path, e))?;
        self.done = true;
        Ok(self.totals)
    }

    /// Like [`finish`](Self::finish), but an empty dataset is an error (and no file is left).
    pub(crate) fn finish_if_not_empty(
        self,
        why: impl FnOnce() -> String,
    ) -> Result<Totals, DatasetError> {
        if self.totals.records == 0 {
            return Err(DatasetError::Empty(why()));
        }
        self.finish()
    }

    /// Path of the file being written (for error messages).
    pub(crate) fn tmp_path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Worker threads to use: the machine's parallelism (at least 1).
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Records per chunk of parallel generation.
const CHUNK: usize = 512;

/// Generates records `0..n` with `make` on `threads` threads and writes them in index order.
/// Each record must depend only on its index (and shared read-only state), so the file is
/// byte-identical whatever the thread count. Worker `t` makes chunks `t, t+T, t+2T, ...` and
/// hands each to the writer over its own bounded channel, so memory stays at a few chunks
/// per thread.
pub(crate) fn generate_parallel<F>(
    w: &mut DatasetWriter,
    n: usize,
    threads: usize,
    make: F,
) -> Result<(), DatasetError>
where
    F: Fn(usize) -> Result<DatasetRecord, DatasetError> + Sync,
{
    let chunks = n.div_ceil(CHUNK);
    let threads = threads.clamp(1, chunks.max(1));
    let path = w.tmp_path().to_path_buf();
    let decor = w.decor.clone();
    let first = w.totals.records;
    let make_chunk = |c: usize| -> Result<(Vec<u8>, Totals), DatasetError> {
        let mut buf = Vec::new();
        let mut t = Totals::default();
        for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
            let rec = DatasetWriter::decorated(&decor, make(i)?, first + i as u64)?;
            encode(&path, &rec, &mut buf, &mut t)?;
        }
        Ok((buf, t))
    };
    if threads == 1 {
        for c in 0..chunks {
            let (buf, t) = make_chunk(c)?;
            w.write_encoded(&buf, &t)?;
        }
        return Ok(());
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut rxs = Vec::with_capacity(threads);
        for k in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Result<(Vec<u8>, Totals), DatasetError>>(2);
            rxs.push(rx);
            let (make_chunk, stop) = (&make_chunk, &stop);
            s.spawn(move || {
                for c in (k..chunks).step_by(threads) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if tx.send(make_chunk(c)).is_err() {
                        return;
                    }
                }
            });
        }
        let result = (|| {
            for c in 0..chunks {
                let got = rxs[c % threads].recv().map_err(|_| {
                    DatasetError::Other("a dataset worker thread stopped unexpectedly".into())
                })?;
                let (buf, t) = got?;
                w.write_encoded(&buf, &t)?;
            }
            Ok(())
        })();
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Dropping the receivers unblocks any worker waiting to send.
        drop(rxs);
        result
    })
}

/// `f` over `items` on up to `threads` threads, results in input order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_types::PlainPrompt;

    fn rec(i: usize) -> DatasetRecord {
        DatasetRecord::Plain(PlainPrompt {
            prompt_length: Some(i as u32),
            output_length: Some(2),
            ..PlainPrompt::new(format!("prompt {i}"))
        })
    }

    fn write_with(dir: &Path, n: usize, threads: usize) -> (Vec<u8>, Totals) {
        let mut w = DatasetWriter::create(dir).unwrap();
        generate_parallel(&mut w, n, threads, |i| Ok(rec(i))).unwrap();
        let t = w.finish().unwrap();
        (std::fs::read(dir.join(files::DATASET)).unwrap(), t)
    }

    #[test]
    fn parallel_output_is_identical_to_serial_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let n = CHUNK * 5 + 17;
        let (one, t1) = write_with(dir.path(), n, 1);
        for threads in [2, 3, 8] {
            let (many, t) = write_with(dir.path(), n, threads);
            assert_eq!(many, one, "{threads} threads");
            assert_eq!(t, t1);
        }
        assert_eq!(t1.records, n as u64);
        assert_eq!(t1.prompts, n as u64);
        assert_eq!(t1.prompt_tokens, (0..n as u64).sum::<u64>());
        assert_eq!(t1.output_tokens, 2 * n as u64);
        assert_eq!(t1.bytes, one.len() as u64);
        let back = bench_types::dataset::read(&dir.path().join(files::DATASET)).unwrap();
        assert_eq!(back, (0..n).map(rec).collect::<Vec<_>>());
        assert!(!dir.path().join("dataset.jsonl.tmp").exists());
    }

    #[test]
    fn an_error_stops_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        for threads in [1, 2] {
            let mut w = DatasetWriter::create(dir.path()).unwrap();
            let e = generate_parallel(&mut w, CHUNK * 9, threads, |i| {
                if i == CHUNK * 3 + 1 {
                    Err(DatasetError::Other(format!("bad {i}")))
                } else {
                    Ok(rec(i))
                }
            })
            .unwrap_err();
            assert_eq!(e.to_string(), format!("bad {}", CHUNK * 3 + 1));
            drop(w);
            assert!(!dir.path().join("dataset.jsonl.tmp").exists());
            assert!(!dir.path().join(files::DATASET).exists());
        }
    }

    #[test]
    fn par_map_keeps_order() {
        let items: Vec<u32> = (0..1000).collect();
        for t in [1, 2, 5] {
            assert_eq!(
                par_map(&items, t, |x| x * 2),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
    }
}
