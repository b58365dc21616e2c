//! Running Trivy. Its output is parsed by `aegis_security::trivy`; this module only runs the binary and
//! turns every way that can go wrong into a failed scanner run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_model::{RunStatus, ScannerRun, Side, Source};
use aegis_security::trivy::parse_report;
use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::process::{Invocation, ProcessError};

/// How to run Trivy.
#[derive(Debug, Clone)]
pub struct TrivyConfig {
    /// The binary (default `trivy`, looked up on PATH).
    pub binary: PathBuf,
    /// `--cache-dir`; Trivy's default (~/.cache/trivy) when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Client/server mode: `--server URL`. The token travels in `TRIVY_TOKEN`, never in argv (where
    /// `ps` would show it).
    pub server: Option<String>,
    pub token: Option<String>,
    /// Kill the scan after this long.
    pub timeout: Duration,
    /// Never refresh the vulnerability DB: use the one in the cache as it is (offline use, a DB built
    /// in-house). Scans always pass `--skip-db-update`; [`TrivyScanner::prepare_db`] does the refreshing.
    pub skip_db_update: bool,
    /// `--insecure`: allow plain-HTTP or self-signed registries (the local test registry).
    pub insecure_registry: bool,
    /// `--cache-backend memory`: skip Trivy's on-disk layer cache. AEGIS caches whole results by image
    /// digest instead, and concurrent Trivy processes sharing one on-disk cache fail on its BoltDB lock
    /// after 5 s ("cache may be in use by another process").
    pub memory_cache: bool,
    /// `--image-src`, e.g. `remote` to read images straight from their registry without first probing
    /// for a Docker, containerd or Podman daemon. `None`: Trivy's default order.
    pub image_src: Option<String>,
}

impl Default for TrivyConfig {
    fn default() -> Self {
        TrivyConfig {
            binary: PathBuf::from("trivy"),
            cache_dir: None,
            server: None,
            token: None,
            timeout: Duration::from_secs(600),
            skip_db_update: false,
            insecure_registry: false,
            memory_cache: true,
            image_src: None,
        }
    }
}

/// What `trivy --version --format json` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrivyVersion {
    pub version: String,
    /// `VulnerabilityDB.UpdatedAt`, when a DB is present.
    pub db_updated_at: Option<String>,
}

impl TrivyVersion {
    pub fn label(&self) -> String {
        match &self.db_updated_at {
            Some(db) => format!("{} (db {db})", self.version),
            None => self.version.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrivyScanner {
    pub config: TrivyConfig,
    /// The last version read successfully. Failures are not kept (the binary may appear later), and
    /// refreshing the DB forgets it (the DB date is part of the version).
    version: Arc<Mutex<Option<TrivyVersion>>>,
}

impl TrivyScanner {
    pub fn new(config: TrivyConfig) -> Self {
        TrivyScanner { config, version: Arc::default() }
    }

    fn invocation(&self, args: Vec<OsString>) -> Invocation {
        let mut inv = Invocation::new(&self.config.binary, args);
        // Trivy's own --timeout is for analysis; ours kills the process a little later as a backstop.
        inv.timeout = self.config.timeout + Duration::from_secs(2);
        if let Some(t) = &self.config.token {
            inv.env.push(("TRIVY_TOKEN".into(), t.into()));
        }
        inv
    }

    /// `trivy --version --format json`, read once and remembered until the DB is refreshed.
    pub async fn version(&self) -> Result<TrivyVersion, ProcessError> {
        let mut cached = self.version.lock().await;
        if let Some(v) = cached.as_ref() {
            return Ok(v.clone());
        }
        let v = self.read_version().await?;
        *cached = Some(v.clone());
        Ok(v)
    }

    async fn read_version(&self) -> Result<TrivyVersion, ProcessError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct V {
            version: String,
            #[serde(rename = "VulnerabilityDB")]
            vulnerability_db: Option<Db>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Db {
            updated_at: Option<String>,
        }
        let mut args: Vec<OsString> = vec!["--version".into(), "--format".into(), "json".into()];
        if let Some(dir) = &self.config.cache_dir {
            args.extend(["--cache-dir".into(), dir.into()]);
        }
        let mut inv = self.invocation(args);
        inv.timeout = Duration::from_secs(30);
        let out = inv.run().await?;
        let v: V = serde_json::from_slice(&out.stdout).map_err(|e| ProcessError::Io {
            program: self.config.binary.display().to_string(),
            message: format!("unreadable --version output: {e}"),
        })?;
        Ok(TrivyVersion { version: v.version, db_updated_at: v.vulnerability_db.and_then(|d| d.updated_at) })
    }

    /// Arguments every scan takes. `scanners`: `--scanners` for the subcommands that have it
    /// (`trivy config` has none and refuses the flag).
    fn common_args(&self, subcommand: &str, scanners: Option<&str>) -> Vec<OsString> {
        let c = &self.config;
        let mut args: Vec<OsString> = vec![subcommand.into(), "--format".into(), "json".into(), "--quiet".into()];
        if let Some(s) = scanners {
            args.extend(["--scanners".into(), s.into()]);
        }
        args.extend([
            "--timeout".into(),
            format!("{}s", c.timeout.as_secs().max(1)).into(),
            "--skip-version-check".into(),
            "--disable-telemetry".into(),
        ]);
        if let Some(dir) = &c.cache_dir {
            args.extend(["--cache-dir".into(), dir.into()]);
        }
        if c.memory_cache {
            args.extend(["--cache-backend".into(), "memory".into()]);
        }
        args
    }

    /// Download or refresh the vulnerability DB once, so that concurrent scans can all run with
    /// `--skip-db-update` and only read it. A no-op in client/server mode or with `skip_db_update`.
    pub async fn prepare_db(&self) -> Result<(), ProcessError> {
        if self.config.skip_db_update || self.config.server.is_some() {
            return Ok(());
        }
        let mut args: Vec<OsString> = vec![
            "image".into(),
            "--download-db-only".into(),
            "--quiet".into(),
            "--skip-version-check".into(),
            "--disable-telemetry".into(),
        ];
        if let Some(dir) = &self.config.cache_dir {
            args.extend(["--cache-dir".into(), dir.into()]);
        }
        let result = self.invocation(args).run().await.map(|_| ());
        *self.version.lock().await = None;
        result
    }

    /// Scan an image for vulnerabilities and secrets.
    pub async fn scan_image(&self, reference: &str, side: Side) -> ScannerRun {
        let mut args = self.common_args("image", Some("vuln,secret"));
        // Client/server mode exists for image scans only (`trivy config` has no --server).
        if let Some(server) = &self.config.server {
            args.extend(["--server".into(), server.into()]);
        }
        // The DB is refreshed once by `prepare_db`; every scan only reads it (see `memory_cache`).
        if self.config.server.is_none() {
            args.extend(["--skip-db-update".into(), "--skip-java-db-update".into()]);
        }
        if self.config.insecure_registry {
            args.push("--insecure".into());
        }
        if let Some(src) = &self.config.image_src {
            args.extend(["--image-src".into(), src.into()]);
        }
        args.push("--".into());
        args.push(reference.into());
        self.run(args, reference, side).await
    }

    /// `trivy config` over manifests (no vulnerability DB needed: the checks are embedded).
    pub async fn scan_config(&self, path: &Path, side: Side) -> ScannerRun {
        let mut args = self.common_args("config", None);
        args.push("--skip-check-update".into());
        args.push("--".into());
        args.push(path.into());
        self.run(args, &path.display().to_string(), side).await
    }

    async fn run(&self, args: Vec<OsString>, target: &str, side: Side) -> ScannerRun {
        let started = Timestamp::now();
        let clock = Instant::now();
        let version = self.version().await;
        let mut run = ScannerRun::new(Source::Trivy, side, target, started);
        run.tool_version = version.as_ref().ok().map(TrivyVersion::label);
        let result = match version {
            // Without a working binary there is no point trying the scan; the version error says why.
            Err(e) => Err(e.to_string()),
            Ok(_) => match self.invocation(args).run().await {
                Err(e) => Err(e.to_string()),
                Ok(out) => parse_report(&out.stdout).map_err(|e| e.to_string()),
            },
        };
        run.duration_ms = clock.elapsed().as_millis() as u64;
        match result {
            Ok(report) => {
                if let Some(aegis_model::Target::Image { digest: Some(d), .. }) = &report.artifact {
                    run.notes.push(format!("image digest {d}"));
                }
                report.fill(&mut run);
            }
            Err(reason) => run.status = RunStatus::Failed { reason },
        }
        run
    }
}

/// The digest Trivy reported for the image it scanned, recorded in a run's notes by `scan_image`.
pub fn scanned_digest(run: &ScannerRun) -> Option<&str> {
    run.notes.iter().find_map(|n| n.strip_prefix("image digest "))
}
