//! Reading files from the command line: size limits and messages that name the file.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Read a whole file, refusing anything larger than `max_bytes` and anything that is not a regular
/// file: a device (`/dev/zero` never ends), a FIFO (blocks) or a socket would bypass the limit. The
/// check is made on the opened file, and the read itself stops past the limit, so a file that grows
/// after the check cannot slip through either.
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
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
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!("{} grew past the {}-byte limit while it was read", path.display(), max_bytes);
    }
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
}
