//! Progress on stderr while gates run. On a terminal: one live line naming
//! the running gates and their elapsed time, and a permanent line as each
//! finishes. Elsewhere (CI, pipes): plain log lines at start and finish.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portcullis::pipeline::{GateReport, Outcome, Progress};

#[derive(Debug)]
pub(crate) struct Reporter {
    live: bool,
    /// `--quiet`: no progress lines at all.
    quiet: bool,
    color: bool,
    running: Mutex<BTreeMap<String, Instant>>,
}

impl Reporter {
    pub(crate) fn new(live: bool, quiet: bool, color: bool) -> Arc<Reporter> {
        Arc::new(Reporter {
            live: live && !quiet,
            quiet,
            color,
            running: Mutex::new(BTreeMap::new()),
        })
    }

    /// Redraws the live line every 200 ms; a no-op away from a terminal.
    pub(crate) fn start_ticker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let reporter = Arc::clone(self);
        tokio::spawn(async move {
            if !reporter.live {
                return;
            }
            let mut interval = tokio::time::interval(Duration::from_millis(200));
            loop {
                interval.tick().await;
                reporter.redraw();
            }
        })
    }

    /// Clears the live line before the report is printed.
    pub(crate) fn finish(&self) {
        if self.live {
            let _ = write!(io::stderr(), "\r\x1b[2K");
        }
    }

    fn redraw(&self) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_empty() {
            return;
        }
        let line = running
            .iter()
            .map(|(gate, start)| format!("{gate} {}s", start.elapsed().as_secs()))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = write!(io::stderr(), "\r\x1b[2K⏳ running: {line}");
        let _ = io::stderr().flush();
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl Progress for Reporter {
    fn gate_started(&self, gate: &str) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(gate.to_owned(), Instant::now());
        if !self.live && !self.quiet {
            let _ = writeln!(io::stderr(), "portcullis: gate {gate} started");
        }
    }

    fn gate_finished(&self, report: &GateReport) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&report.id);
        let label = report.outcome.label();
        let code = match report.outcome {
            Outcome::Passed => "32",
            Outcome::Failed => "31",
            Outcome::Warned => "33",
            Outcome::Errored => "35",
            Outcome::Skipped { .. } => "2",
        };
        if self.quiet {
            return;
        }
        let took = portcullis::report::human_duration(report.duration);
        let findings = report.findings.len();
        if self.live {
            let _ = writeln!(
                io::stderr(),
                "\r\x1b[2K{} {} ({findings} findings, {took})",
                self.paint(code, &format!("{label:>7}")),
                report.id
            );
        } else {
            let _ = writeln!(
                io::stderr(),
                "portcullis: gate {} {label} ({findings} findings, {took})",
                report.id
            );
        }
    }
}
