//! Crash points for the resume tests. With `AEGIS_FAILPOINT=<name>` the process aborts at that
//! point (like `kill -9`: no cleanup, no status write), so a test can prove that a restarted operator
//! resumes every phase correctly — including the nastiest moment, after a production patch was sent
//! and before it was recorded. Unset (always, outside tests), each point costs one comparison.
//!
//! | name | where |
//! |---|---|
//! | `detected:before-commit` | the Incident exists, its first status is not written |
//! | `analyzing:before-commit` | the analysis is done, its status not written |
//! | `verifying:during` | two seconds into a verification: the shadow exists |
//! | `awaiting-approval:before-commit` | the approval is decided, not recorded |
//! | `applying:after-patch` | the fix is in production, the status does not say so |
//! | `applying:pause` | not a crash: an 8 s pause before the production patch, so a test can cut the API server then |
//! | `monitoring:during` | two seconds into the monitoring window |

use std::sync::OnceLock;
use std::time::Duration;

fn configured() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| std::env::var("AEGIS_FAILPOINT").ok().filter(|s| !s.is_empty())).as_deref()
}

/// Abort here if `name` is the configured failpoint.
pub fn hit(name: &str) {
    if configured() == Some(name) {
        eprintln!("AEGIS_FAILPOINT {name}: aborting");
        std::process::abort();
    }
}

/// Abort two seconds from now, whatever is running, if `name` is the configured failpoint.
pub fn during(name: &'static str) {
    if configured() == Some(name) {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            hit(name);
        });
    }
}

/// How long [`pause`] holds: the window a test acts in. Long enough that a test polling a loaded
/// machine still acts inside it.
pub const PAUSE: Duration = Duration::from_secs(8);

/// Pause [`PAUSE`] here if `name` is the configured failpoint (a window for a test to act in).
pub async fn pause(name: &str) {
    if configured() == Some(name) {
        eprintln!("AEGIS_FAILPOINT {name}: pausing {} s", PAUSE.as_secs());
        tokio::time::sleep(PAUSE).await;
    }
}
