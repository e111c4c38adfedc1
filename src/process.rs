//! Running external programs (cargo, rustfmt, git) for gates.
//!
//! The runner sets the working directory, passes an allow-listed
//! environment, applies a timeout and logs the command with anything that
//! looks like a credential redacted. Gates never spawn processes themselves.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::gate::GateError;

/// Environment variables passed through to child processes. Everything else
/// — tokens, cloud credentials — stays out of tools that do not need it.
const ALLOWED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_JOBS",
    "CARGO_NET_OFFLINE",
    "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUST_BACKTRACE",
    "SOURCE_DATE_EPOCH",
    "DATABASE_URL",
    "PGHOST",
    "PGUSER",
    "REDIS_URL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Runs programs on behalf of gates.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    timeout: Duration,
    extra_env: Vec<(String, String)>,
}

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct ProcessOutput {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ProcessOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One program to run: what, where, with which arguments.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
}

impl Invocation {
    pub fn new(program: &str, cwd: &Path) -> Self {
        Invocation {
            program: program.to_owned(),
            args: Vec::new(),
            cwd: cwd.to_owned(),
            env: Vec::new(),
            timeout: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The command line as logs show it, with credentials redacted.
    pub fn display(&self) -> String {
        let mut line = self.program.clone();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&redact_arg(&arg.to_string_lossy()));
        }
        line
    }
}

impl Default for ProcessRunner {
    fn default() -> Self {
        ProcessRunner {
            timeout: Duration::from_secs(60 * 60),
            extra_env: Vec::new(),
        }
    }
}

impl ProcessRunner {
    /// A runner whose programs are stopped after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        ProcessRunner {
            timeout,
            ..ProcessRunner::default()
        }
    }

    /// Adds a variable every child sees, e.g. the marker that tells a test
    /// suite it runs inside the test gate.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Whether `program` can be found on PATH.
    pub fn has_program(&self, program: &str) -> bool {
        let Some(path) = std::env::var_os("PATH") else {
            return false;
        };
        std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
    }

    /// Runs the program to completion (or the timeout) and collects output.
    pub async fn run(&self, invocation: Invocation) -> Result<ProcessOutput, GateError> {
        let timeout = invocation.timeout.unwrap_or(self.timeout);
        tracing::debug!(command = %invocation.display(), cwd = %invocation.cwd.display(), "running");

        let mut command = Command::new(&invocation.program);
        command
            .args(&invocation.args)
            .current_dir(&invocation.cwd)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in std::env::vars_os() {
            let allowed = key.to_str().is_some_and(|k| ALLOWED_ENV.contains(&k));
            if allowed {
                command.env(key, value);
            }
        }
        for (key, value) in self.extra_env.iter().chain(&invocation.env) {
            command.env(key, value);
        }

        let child = command.spawn().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                GateError::ToolMissing {
                    tool: invocation.program.clone(),
                    help: format!(
                        "install `{}` and make sure it is on PATH",
                        invocation.program
                    ),
                }
            } else {
                GateError::Tool {
                    tool: invocation.program.clone(),
                    message: format!("could not start: {err}"),
                    help: String::new(),
                }
            }
        })?;

        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => Ok(ProcessOutput {
                status: output.status.code(),
                stdout: output.stdout,
                stderr: output.stderr,
            }),
            Ok(Err(err)) => Err(GateError::Tool {
                tool: invocation.program.clone(),
                message: format!("could not collect its output: {err}"),
                help: String::new(),
            }),
            Err(_) => Err(GateError::Tool {
                tool: invocation.program.clone(),
                message: format!(
                    "did not finish within {} s and was stopped",
                    timeout.as_secs()
                ),
                help: "raise the gate's `timeout` in the policy, or find what hangs".to_owned(),
            }),
        }
    }
}

/// Hides what looks like a credential in one argument: the password of a URL
/// (`https://user:pw@host`) and the value of `--token=…`-style options.
pub fn redact_arg(arg: &str) -> String {
    if let Some((key, _)) = arg.split_once('=') {
        let lower = key.to_ascii_lowercase();
        if ["token", "password", "secret", "key"]
            .iter()
            .any(|word| lower.contains(word))
        {
            return format!("{key}=<redacted>");
        }
    }
    if let Some(scheme_end) = arg.find("://") {
        let rest = &arg[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}://<redacted>@{}", &arg[..scheme_end], &rest[at + 1..]);
        }
    }
    arg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_arguments() {
        assert_eq!(redact_arg("--token=abc"), "--token=<redacted>");
        assert_eq!(
            redact_arg("https://user:pw@example.com/x?y"),
            "https://<redacted>@example.com/x?y"
        );
        assert_eq!(redact_arg("--all-targets"), "--all-targets");
    }

    #[tokio::test]
    async fn missing_program_is_a_tool_missing_error() {
        let runner = ProcessRunner::default();
        let err = runner
            .run(Invocation::new("portcullis-no-such-tool", Path::new(".")))
            .await
            .expect_err("must fail");
        assert!(matches!(err, GateError::ToolMissing { .. }));
    }

    #[tokio::test]
    async fn child_does_not_inherit_unlisted_variables() {
        let runner = ProcessRunner::default().with_env("PORTCULLIS_MARK", "1");
        let output = runner
            .run(
                Invocation::new("sh", Path::new("."))
                    .args(["-c", "echo ${PORTCULLIS_MARK}-${GITHUB_TOKEN:-unset}"]),
            )
            .await
            .expect("sh runs");
        assert_eq!(output.stdout_lossy().trim(), "1-unset");
    }
}
