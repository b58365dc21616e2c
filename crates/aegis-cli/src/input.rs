//! Reading files from the command line: size limits and messages that name the file.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Open a file to read, refusing anything larger than `max_bytes` and anything that is not a regular
/// file: a device (`/dev/zero` never ends), a FIFO (blocks) or a socket would bypass the limit. The
/// check is made on the opened file, and the reader itself fails past the limit, so a file that grows
/// after the check cannot slip through either.
pub fn open_limited(path: &Path, max_bytes: u64) -> Result<Limited> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory; pass the files inside it", path.display());
    }
    if !meta.is_file() {
        bail!("{} is not a regular file (a device, FIFO or socket); AEGIS reads only regular files", path.display());
    }
    if meta.len() > max_bytes {
        bail!("{} is {} bytes, over the {}-byte limit", path.display(), meta.len(), max_bytes);
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !file.metadata().with_context(|| format!("cannot read {}", path.display()))?.is_file() {
        bail!("{} is not a regular file (a device, FIFO or socket); AEGIS reads only regular files", path.display());
    }
    Ok(Limited { file, left: max_bytes, max_bytes, path: path.display().to_string(), len: meta.len() })
}

/// A file read through [`open_limited`]: an error once it yields more than its limit.
pub struct Limited {
    file: std::fs::File,
    left: u64,
    max_bytes: u64,
    path: String,
    /// Its size when opened.
    len: u64,
}

impl Limited {
    /// The file's size when it was opened.
    pub fn size_when_opened(&self) -> u64 {
        self.len
    }
}

impl std::io::Read for Limited {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is read, to tell "grew" from "exactly at the limit".
        let want = buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!("{} grew past the {}-byte limit while it was read", self.path, self.max_bytes)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Read a whole file through [`open_limited`].
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_limited(path, max_bytes)?;
    let mut bytes = Vec::with_capacity(file.size_when_opened() as usize);
    file.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// [`read_limited`], as UTF-8 text.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String> {
    String::from_utf8(read_limited(path, max_bytes)?).with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The size limits of the files AEGIS reads (docs/security-gate.md, "Limits").
pub mod limits {
    /// A policy file, an ignore file, a rules file, a fix file.
    pub const SMALL_FILE: u64 = 4 * 1024 * 1024;
    /// A snapshot (`aegis analyze --snapshot`).
    pub const SNAPSHOT: u64 = 512 * 1024 * 1024;
    /// A manifest for `aegis scan manifests`.
    pub const MANIFEST: u64 = 64 * 1024 * 1024;
}

/// `--max-file-mib` in bytes; a number too large to be a byte count is a usage error, not an overflow.
pub fn mib(n: u64, flag: &str) -> Result<u64> {
    n.checked_mul(1024 * 1024).with_context(|| format!("{flag} {n} is too large"))
}

/// Files named on the command line, with directories expanded to the YAML/JSON files in them.
pub fn expand_manifest_paths(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
                .collect();
            entries.sort();
            if entries.is_empty() {
                bail!("{} holds no .yaml, .yml or .json files", p.display());
            }
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A duration like `90s`, `10m`, `2h`, `7d`.
pub fn duration(text: &str, what: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().with_context(|| format!("{what}: {text:?} is not a duration like 90s, 10m, 2h or 7d"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("{what}: unknown unit in {text:?} (use ms, s, m, h or d)"),
    };
    let millis = n.checked_mul(unit_ms).with_context(|| format!("{what}: {text:?} is too long"))?;
    Ok(std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl_flags() {
        assert_eq!(duration("90s", "x").unwrap().as_secs(), 90);
        assert_eq!(duration("500ms", "x").unwrap().as_millis(), 500);
        assert_eq!(duration("10m", "x").unwrap().as_secs(), 600);
        assert_eq!(duration("7d", "x").unwrap().as_secs(), 604_800);
        assert!(duration("ten minutes", "--timeout").unwrap_err().to_string().contains("--timeout"));
        assert!(duration("5y", "x").is_err());
    }

    #[test]
    fn a_file_at_its_limit_is_read_and_one_over_it_or_growing_past_it_is_refused() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_limited(&path, 10).unwrap(), b"0123456789");
        assert!(read_limited(&path, 9).unwrap_err().to_string().contains("over the 9-byte limit"));
        let mut reader = open_limited(&path, 10).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"more").unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("grew past the 10-byte limit"), "{err}");
        assert!(read_limited(dir.path(), 10).unwrap_err().to_string().contains("is a directory"));
    }
}
