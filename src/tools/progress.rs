//! Progress bars for long work, on a terminal only: piped output stays
//! quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps on stderr, hidden unless stderr is a terminal.
pub fn progress_bar(len: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target()).with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A count of steps whose number is not known yet, on stderr, hidden
/// unless stderr is a terminal.
pub fn progress_count(message: &'static str) -> ProgressBar {
    let count = ProgressBar::with_draw_target(None, target()).with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{msg}: {human_pos} ({per_sec})") {
        count.set_style(style);
    }
    count
}

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
