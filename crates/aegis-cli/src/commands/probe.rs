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
            let lines = connect_all(addrs, timeout, settle).await;
            print!("{lines}");
            // Outside a pod there is no termination-message file: stdout is the result then.
            let _ = std::fs::write(message_file, &lines);
            Ok(0)
        }
    }
}

/// One line per address, in order: `reached ADDR` or `blocked ADDR: why`. The addresses are tried at
/// once, each every second for `settle`. A NetworkPolicy enforcer programs a new pod's rules (and adds
/// it to the sets other pods' rules name) a moment after the pod starts: tries in the first half only
/// let the rules land, and one connection in the second half means the address is reachable.
async fn connect_all(addrs: &[String], timeout: Duration, settle: Duration) -> String {
    let tries = addrs.iter().map(|addr| async move {
        let start = tokio::time::Instant::now();
        loop {
            let counts = start.elapsed() >= settle / 2;
            let last = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await {
                Ok(Ok(_)) if counts => return format!("reached {addr}"),
                Ok(Ok(_)) => "reached only while the rules settled".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {}s (timeout)", timeout.as_secs_f64()),
            };
            if start.elapsed() >= settle {
                return format!("blocked {addr}: {last}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
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
        let lines = connect_all(&[open_addr.clone(), closed.clone()], Duration::from_secs(2), Duration::ZERO).await;
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], format!("reached {open_addr}"));
        assert!(lines[1].starts_with(&format!("blocked {closed}: ")), "{}", lines[1]);
    }
}
