//! A child process whose stdout lines arrive, time-stamped, on a channel.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Running {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Every line read so far, for failure messages and later searches.
    pub seen: Vec<(Instant, String)>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let (tx, lines) = mpsc::channel();
        // Errors go to stderr; they arrive with the rest, marked.
        let stderr = child.stderr.take().map(|e| (e, "stderr: "));
        let stdout = child.stdout.take().map(|o| (o, ""));
        forward(stdout, tx.clone());
        forward(stderr, tx);
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first new line matching `pred` within `timeout`, and when it
    /// was printed.
    pub fn expect_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(Instant, String)> {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l.1) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits for the process to exit; its success, or `None` on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Option<bool> {
        let end = Instant::now() + timeout;
        loop {
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Lines printed just before exit.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return Some(status.success());
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no chance to close sessions or save anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything printed so far, for assertion messages.
    pub fn transcript(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Sends each line of `source` on `tx`, with its arrival time and a mark.
fn forward<R: std::io::Read + Send + 'static>(
    source: Option<(R, &'static str)>,
    tx: mpsc::Sender<(Instant, String)>,
) {
    let Some((source, mark)) = source else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), format!("{mark}{line}"))).is_err() {
                break;
            }
        }
    });
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
