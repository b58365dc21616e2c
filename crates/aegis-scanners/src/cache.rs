//! A content-addressed, on-disk cache of image scans, so that verifying a second fix for the same
//! workload never rescans an image digest it has already scanned.
//!
//! The key is the image *digest* plus everything that changes the answer for the same bytes: the
//! scanner's version and its vulnerability DB date. Entries also expire after a TTL, because advisories
//! appear for old images every day. Writes are atomic (temp file + rename), so a crash leaves either
//! the old entry or the new one, never half of one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aegis_model::{Digest, ScannerRun};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct ScanCache {
    dir: PathBuf,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    stored: Timestamp,
    run: ScannerRun,
}

impl ScanCache {
    pub fn new(dir: impl Into<PathBuf>, ttl: Duration) -> Self {
        ScanCache { dir: dir.into(), ttl }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache key for an image digest scanned by a given scanner version.
    pub fn key(image_digest: &str, scanner_version: &str) -> String {
        format!("{image_digest}|{scanner_version}")
    }

    fn path(&self, key: &str) -> PathBuf {
        let d = Digest::of_bytes(key.as_bytes());
        self.dir.join(format!("{}.json", d.as_str().trim_start_matches("sha256:")))
    }

    /// A fresh entry, if any. Unreadable or stale entries are misses (and are left to be overwritten).
    pub fn get(&self, key: &str, now: Timestamp) -> Option<ScannerRun> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let age = now.duration_since(entry.stored);
        let fresh = age.is_positive() || age.is_zero();
        (entry.key == key && fresh && age.unsigned_abs() <= self.ttl).then_some(entry.run)
    }

    /// Store a *successful* run. Failed runs are never cached: a timeout today must be retried tomorrow.
    pub fn put(&self, key: &str, run: &ScannerRun, now: Timestamp) -> std::io::Result<()> {
        if !run.status.is_ok() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let entry = Entry { key: key.to_owned(), stored: now, run: run.clone() };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let target = self.path(key);
        let tmp = target.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_model::{Side, Source};

    fn run(ok: bool) -> ScannerRun {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        if ok {
            ScannerRun::new(Source::Trivy, Side::Baseline, "img", t)
        } else {
            ScannerRun::failed(Source::Trivy, Side::Baseline, "img", t, "x")
        }
    }

    #[test]
    fn entries_are_found_by_digest_and_version_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::new(dir.path(), Duration::from_secs(3600));
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let key = ScanCache::key("sha256:abc", "0.74.0 (db x)");
        cache.put(&key, &run(true), t0).unwrap();
        assert!(cache.get(&key, t0).is_some());
        assert!(cache.get(&ScanCache::key("sha256:abc", "0.75.0 (db x)"), t0).is_none());
        let later = t0.checked_add(jiff::SignedDuration::from_secs(7200)).unwrap();
        assert!(cache.get(&key, later).is_none(), "stale entries are misses");
    }

    #[test]
    fn failed_runs_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::new(dir.path(), Duration::from_secs(3600));
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        cache.put("k", &run(false), t0).unwrap();
        assert!(cache.get("k", t0).is_none());
    }
}
