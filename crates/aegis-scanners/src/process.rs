//! Running a scanner binary: no shell, a deadline that kills the whole process group, bounded output,
//! stderr kept for the error message.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How a subprocess failed. Every variant is a reason to fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` not found (is it installed and on PATH?)")]
    NotFound { program: String },
    #[error("could not start `{program}`: {message}")]
    Spawn { program: String, message: String },
    #[error("`{program}` did not finish within {seconds}s and was killed")]
    Timeout { program: String, seconds: u64 },
    #[error("`{program}` exited with {status}: {stderr}")]
    Exit { program: String, status: String, stderr: String },
    #[error("`{program}` wrote more than {limit} bytes to stdout; output rejected")]
    TooLarge { program: String, limit: usize },
    #[error("reading `{program}` output: {message}")]
    Io { program: String, message: String },
}

/// A command to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    pub max_stdout: usize,
}

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    /// The last part of stderr (logs), for notes.
    pub stderr_tail: String,
}

const STDERR_KEEP: usize = 8 * 1024;

impl Invocation {
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Invocation {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout: Duration::from_secs(300),
            max_stdout: 512 * 1024 * 1024,
        }
    }

    fn name(&self) -> String {
        self.program.display().to_string()
    }

    /// Run to completion. Non-zero exit, timeout, oversize output: all errors.
    pub async fn run(&self) -> Result<Output, ProcessError> {
        let program = self.name();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout kills the scanner and anything it started.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProcessError::NotFound { program: program.clone() },
            _ => ProcessError::Spawn { program: program.clone(), message: e.to_string() },
        })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let limit = self.max_stdout;

        let work = async {
            let (out, err, status) = tokio::join!(read_capped(stdout, limit), read_tail(stderr), child.wait());
            (out, err, status)
        };
        let (out, err, status) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                kill_group(pid);
                return Err(ProcessError::Timeout { program, seconds: self.timeout.as_secs() });
            }
        };
        let status = status.map_err(|e| ProcessError::Io { program: program.clone(), message: e.to_string() })?;
        let stderr_tail = err;
        let stdout = match out {
            Ok(b) => b,
            Err(Capped::TooLarge) => {
                kill_group(pid);
                return Err(ProcessError::TooLarge { program, limit });
            }
            Err(Capped::Io(message)) => return Err(ProcessError::Io { program, message }),
        };
        if !status.success() {
            let status = match status.code() {
                Some(c) => format!("exit code {c}"),
                None => "a signal".to_owned(),
            };
            let stderr = if stderr_tail.trim().is_empty() { "(no stderr)".to_owned() } else { stderr_tail.trim().to_owned() };
            return Err(ProcessError::Exit { program, status, stderr });
        }
        Ok(Output { stdout, stderr_tail })
    }
}

enum Capped {
    TooLarge,
    Io(String),
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> Result<Vec<u8>, Capped> {
    let Some(mut pipe) = pipe else { return Ok(Vec::new()) };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await.map_err(|e| Capped::Io(e.to_string()))?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > limit {
            return Err(Capped::TooLarge);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn read_tail(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else { return String::new() };
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > STDERR_KEEP * 2 {
            tail.drain(..tail.len() - STDERR_KEEP);
        }
    }
    let start = tail.len().saturating_sub(STDERR_KEEP);
    String::from_utf8_lossy(&tail[start..]).into_owned()
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; the group was created for this child with process_group(0).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_binary_is_named_in_the_error() {
        let err = Invocation::new("/nonexistent/trivy", ["--version"]).run().await.unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_process_and_its_children_are_killed_at_the_deadline() {
        let mut inv = Invocation::new("sh", ["-c", "sleep 30 & sleep 30"]);
        inv.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = inv.run().await.unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_non_zero_exit_keeps_stderr_for_the_reason() {
        let err = Invocation::new("sh", ["-c", "echo 'FATAL db corrupt' >&2; exit 1"]).run().await.unwrap_err();
        assert!(err.to_string().contains("exit code 1") && err.to_string().contains("FATAL db corrupt"), "{err}");
    }

    #[tokio::test]
    async fn oversized_output_is_rejected() {
        let mut inv = Invocation::new("sh", ["-c", "head -c 100000 /dev/zero"]);
        inv.max_stdout = 1000;
        assert!(matches!(inv.run().await.unwrap_err(), ProcessError::TooLarge { .. }));
    }
}
