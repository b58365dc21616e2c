//! Test support shared by AEGIS's crates. A dev-dependency only.

pub mod cluster;
pub mod zap;

use std::path::PathBuf;

/// `$AEGIS_TESTDATA`, else `../shared/testdata` beside the repository. Panics — loudly, never skips —
/// when the directory is missing, because the tests that call this are worthless without it.
pub fn testdata() -> PathBuf {
    let dir = std::env::var_os("AEGIS_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"));
    assert!(
        dir.join("SOURCES.md").is_file(),
        "\n\n*** shared test data not found at {} ***\n*** set AEGIS_TESTDATA to the shared/testdata directory ***\n",
        dir.display()
    );
    dir
}

/// Every file in `testdata/<sub>` whose name ends with one of `exts`, sorted. Panics if there are none.
pub fn files(sub: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(testdata().join(sub))
        .unwrap_or_else(|e| panic!("reading testdata/{sub}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| exts.iter().any(|x| p.to_string_lossy().ends_with(x)))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {exts:?} files in testdata/{sub}");
    out
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An environment variable the harness sets. Panics — loudly, never skips — when it is missing,
/// naming the script that provides it.
pub fn harness_env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "\n\n*** {name} is not set: this test needs a harness (scripts/harness: cluster.sh, scanners.sh, postgres.sh). Run scripts/test.sh, or\n***   eval \"$(scripts/tools.sh)\" && eval \"$(scripts/harness/scanners.sh up /tmp/aegis-harness)\"\n"
        )
    })
}

/// A fresh database on the harness' PostgreSQL (`AEGIS_POSTGRES_DSN`, from scripts/harness/postgres.sh)
/// for one test, named `<name>_<pid>` (dropped first if a run before left it); its URL.
pub async fn postgres_database(name: &str) -> String {
    let dsn = harness_env("AEGIS_POSTGRES_DSN");
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.expect("the harness' PostgreSQL answers");
    tokio::spawn(conn);
    let name = format!("{name}_{}", std::process::id());
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = dsn.rsplit_once('/').expect("a PostgreSQL URL ends with its database");
    format!("{base}/{name}")
}
