//! `aegis probe connect`: the isolation probe's side inside a shadow (see `aegis_k8s::isolation`).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use crate::cli::ProbeCommand;

pub async fn run(cmd: &ProbeCommand) -> Result<u8> {
    match cmd {
        ProbeCommand::Connect { addrs, timeout, settle, message_file } => {
            let timeout = crate::input::duration(timeout, "--timeout")?;
            let settle = crate::input::duration(settle, "--settle")?;
            let lines = connect_all(addrs, timeout, settle, Duration::from_secs(1)).await;
            print!("{lines}");
            // Outside a pod there is no termination-message file: stdout is the result then.
            let _ = std::fs::write(message_file, &lines);
            Ok(0)
        }
    }
}

/// How many tries in a row must fail, when the window ends, for an address to count as blocked: the
/// rules have landed and hold.
const BLOCKED_IN_A_ROW: u32 = 3;

/// One line per address, in order: `reached ADDR` or `blocked ADDR: why`. The addresses are tried at
/// once, each every `interval` for `settle`. A NetworkPolicy enforcer programs a new pod's rules (and
/// adds it to the sets other pods' rules name) some time after the pod starts — seconds on a busy node
/// — and until then it may let everything through or reject everything (kube-router does the latter).
/// So only the state when the window ends counts: reached if the last try reached, blocked if the last
/// [`BLOCKED_IN_A_ROW`] tries failed. An address still changing then is tried on until one of the two
/// holds. A shadow whose enforcer needs longer than `settle` is not shown isolated: that fails closed.
async fn connect_all(addrs: &[String], timeout: Duration, settle: Duration, interval: Duration) -> String {
    let tries = addrs.iter().map(|addr| async move {
        let start = tokio::time::Instant::now();
        let mut failed_in_a_row = 0;
        let mut tries = 0u32;
        let mut last_reached: Option<u32> = None;
        let mut last_failure = String::new();
        loop {
            tries += 1;
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await {
                Ok(Ok(_)) => {
                    failed_in_a_row = 0;
                    last_reached = Some(tries);
                }
                Ok(Err(e)) => {
                    failed_in_a_row += 1;
                    last_failure = e.to_string();
                }
                Err(_) => {
                    failed_in_a_row += 1;
                    last_failure = format!("no answer within {}s (timeout)", timeout.as_secs_f64());
                }
            }
            if start.elapsed() >= settle {
                if failed_in_a_row == 0 {
                    return format!("reached {addr}");
                }
                if failed_in_a_row >= BLOCKED_IN_A_ROW {
                    let settled = last_reached.map(|n| format!(" (reached by try {n} of {tries}, while the rules landed)"));
                    return format!("blocked {addr}: {last_failure}{}", settled.unwrap_or_default());
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
    let mut out = String::new();
    for line in futures::future::join_all(tries).await {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_address_is_reached_and_a_closed_one_blocked() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap().to_string();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let lines = connect_all(&[open_addr.clone(), closed.clone()], Duration::from_secs(2), Duration::ZERO, Duration::ZERO).await;
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], format!("reached {open_addr}"));
        assert!(lines[1].starts_with(&format!("blocked {closed}: ")), "{}", lines[1]);
    }

    /// CI saw kube-router take longer than half the window to program a new pod on a busy node: an
    /// address is blocked once the rules land and hold, however late in the window that is.
    #[tokio::test]
    async fn an_address_reachable_until_late_in_the_window_and_then_blocked_counts_as_blocked() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = open.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            drop(open);
        });
        let lines =
            connect_all(std::slice::from_ref(&addr), Duration::from_secs(1), Duration::from_millis(1500), Duration::from_millis(100)).await;
        assert!(lines.starts_with(&format!("blocked {addr}: ")), "{lines}");
    }

    /// CI saw kube-router reject a new pod's connections to its own shadow's Service until its allow
    /// rules landed: what counts is the state when the window ends, not the first failures.
    #[tokio::test]
    async fn an_address_refused_at_first_and_reachable_when_the_window_ends_is_reached() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let open = tokio::net::TcpListener::bind(addr).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(open);
        });
        let addr = addr.to_string();
        let lines =
            connect_all(std::slice::from_ref(&addr), Duration::from_secs(1), Duration::from_millis(1500), Duration::from_millis(100)).await;
        assert_eq!(lines, format!("reached {addr}\n"));
    }

    #[tokio::test]
    async fn an_address_still_reachable_when_the_window_ends_is_reached() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = open.local_addr().unwrap().to_string();
        let lines =
            connect_all(std::slice::from_ref(&addr), Duration::from_secs(1), Duration::from_millis(500), Duration::from_millis(100)).await;
        assert_eq!(lines, format!("reached {addr}\n"));
    }
}
