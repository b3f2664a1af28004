//! `SHA256SUMS`, the checksums of an experiment's copy, in sha256sum's format
//! (`<64 hex>  <path>` a line), so `sha256sum -c SHA256SUMS` checks a copy too.

use std::path::Path;

use crate::StoreError;

/// The text of a SHA256SUMS file of `files` under `dir`.
pub(crate) fn write(dir: &Path, files: &[String]) -> Result<String, StoreError> {
    let mut out = String::new();
    for f in files {
        let p = dir.join(f);
        let (_, sha) =
            bench_types::manifest::sha256_file(&p).map_err(|e| StoreError::local(&p, e))?;
        out.push_str(&format!("{sha}  {f}\n"));
    }
    Ok(out)
}

/// `(path, sha256)` of every line; an error names the line (`what` names the file).
pub(crate) fn parse(text: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        // `  ` text mode, ` *` binary mode: the same bytes either way
        let parsed = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .filter(|(h, p)| {
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && !p.is_empty()
            });
        let Some((hash, path)) = parsed else {
            return Err(format!(
                "{what}, line {}: not `<sha256>  <path>`: {line}",
                i + 1
            ));
        };
        out.push((path.to_string(), hash.to_ascii_lowercase()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("cells")).unwrap();
        std::fs::write(d.path().join("cells/a b.txt"), "abc").unwrap();
        std::fs::write(d.path().join("x"), "").unwrap();
        let files = vec!["cells/a b.txt".to_string(), "x".to_string()];
        let text = write(d.path(), &files).unwrap();
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  cells/a b.txt\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  x\n"
        );
        let back = parse(&text, "SHA256SUMS").unwrap();
        assert_eq!(
            back.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            files
        );
        let bin = format!("{} *x\n", "A".repeat(64));
        assert_eq!(parse(&bin, "s").unwrap(), [("x".into(), "a".repeat(64))]);
        let e = parse("ok\n", "SUMS").unwrap_err();
        assert_eq!(e, "SUMS, line 1: not `<sha256>  <path>`: ok");
    }
}
