//! Upload progress on stderr: indicatif's bar, redrawn in place on a
//! terminal; one summary line otherwise (logs and scripts get no carriage
//! returns).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `n` bytes for people: `812 B`, `12.3 KiB`, `4.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// How the bar is drawn: `uploading hello.wasm [=====>    ]  50% 32 KiB/64 KiB`.
const TEMPLATE: &str = "{msg} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes}";

/// Progress of one upload.
pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    /// Progress of `total` bytes labelled `label` (e.g. `uploading
    /// hello.wasm`); `quiet` says nothing at all.
    pub fn new(label: impl Into<String>, total: usize, quiet: bool) -> Progress {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.into());
        Progress { bar, quiet }
    }

    /// The bar to advance as bytes go out (a handle: clones share it).
    pub fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// The transfer is over: leaves the bar's last state on a terminal,
    /// or prints one summary line where no bar could be drawn.
    pub fn finish(&self) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() || !std::io::stderr().is_terminal() {
            let total = self.bar.length().unwrap_or_default();
            eprintln!("{}: {} of {} sent", self.bar.message(), human_bytes(self.bar.position()), human_bytes(total));
        } else {
            self.bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_template() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(12_595), "12.3 KiB");
        assert_eq!(human_bytes(4 << 20), "4.0 MiB");
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let p = Progress::new("up", 100, true);
        p.bar().inc(50);
        assert_eq!((p.bar.position(), p.bar.length()), (50, Some(100)));
    }
}
