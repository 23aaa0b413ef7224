//! Upload progress on stderr: a bar redrawn in place on a terminal, one
//! summary line otherwise (logs and scripts get no carriage returns).

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};

/// Shared progress of one transfer.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<State>>,
}

struct State {
    label: String,
    total: usize,
    done: usize,
    tty: bool,
    quiet: bool,
    drawn_percent: Option<usize>,
}

/// `n` bytes for people: `812 B`, `12.3 KiB`, `4.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

fn bar(label: &str, done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "{label} [{}{}] {percent:>3}% {}/{}",
        "=".repeat(filled),
        " ".repeat(WIDTH - filled.min(WIDTH)),
        human_bytes(done as u64),
        human_bytes(total as u64)
    )
}

impl Progress {
    /// Progress of `total` bytes labelled `label` (e.g. `uploading hello.wasm`);
    /// `quiet` draws nothing.
    pub fn new(label: impl Into<String>, total: usize, quiet: bool) -> Progress {
        let state = State {
            label: label.into(),
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            quiet,
            drawn_percent: None,
        };
        Progress { inner: Arc::new(Mutex::new(state)) }
    }

    /// `n` more bytes went out.
    pub fn advance(&self, n: usize) {
        let Ok(mut s) = self.inner.lock() else { return };
        s.done = (s.done + n).min(s.total);
        if s.quiet || !s.tty {
            return;
        }
        let percent = (s.done * 100).checked_div(s.total).unwrap_or(100);
        if s.drawn_percent != Some(percent) {
            s.drawn_percent = Some(percent);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}", bar(&s.label, s.done, s.total));
            let _ = err.flush();
        }
    }

    /// The transfer is over: ends the bar's line (or prints the summary).
    pub fn finish(&self) {
        let Ok(s) = self.inner.lock() else { return };
        if s.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if s.tty {
            let _ = writeln!(err, "\r{}", bar(&s.label, s.done, s.total));
        } else {
            let _ = writeln!(err, "{}", bar(&s.label, s.done, s.total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bar() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(12_595), "12.3 KiB");
        assert_eq!(human_bytes(4 << 20), "4.0 MiB");
        assert_eq!(bar("up", 50, 100), format!("up [{}{}]  50% 50 B/100 B", "=".repeat(15), " ".repeat(15)));
        assert!(bar("up", 0, 0).contains("100%"));
    }
}
