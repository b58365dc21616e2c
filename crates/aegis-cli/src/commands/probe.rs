//! `aegis probe connect`: the isolation probe's side inside a shadow (see `aegis_k8s::isolation`).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use crate::cli::ProbeCommand;

pub async fn run(cmd: &ProbeCommand) -> Result<u8> {
    match cmd {
        ProbeCommand::Connect { addrs, timeout, message_file } => {
            let timeout = crate::input::duration(timeout, "--timeout")?;
            let lines = connect_all(addrs, timeout).await;
            print!("{lines}");
            // Outside a pod there is no termination-message file: stdout is the result then.
            let _ = std::fs::write(message_file, &lines);
            Ok(0)
        }
    }
}

/// One line per address, in order: `reached ADDR` or `blocked ADDR: why`.
async fn connect_all(addrs: &[String], timeout: Duration) -> String {
    let mut out = String::new();
    for addr in addrs {
        let line = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await {
            Ok(Ok(_)) => format!("reached {addr}"),
            Ok(Err(e)) => format!("blocked {addr}: {e}"),
            Err(_) => format!("blocked {addr}: no answer within {}s (timeout)", timeout.as_secs_f64()),
        };
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
        let lines = connect_all(&[open_addr.clone(), closed.clone()], Duration::from_secs(2)).await;
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], format!("reached {open_addr}"));
        assert!(lines[1].starts_with(&format!("blocked {closed}: ")), "{}", lines[1]);
    }
}
