//! Progress for long runs: drawn on stderr when both stdout and stderr are
//! terminals, hidden (and free) when output goes to a pipe or a file.

use std::io::IsTerminal;

use std::fmt::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// True when a person is watching: stdout and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A bar of `total` steps (a spinner when the total is unknown) that only
/// draws when [`interactive`] and when the run is long enough to matter.
pub fn bar(total: Option<u64>, what: &str) -> ProgressBar {
    let long_enough = total.is_none_or(|n| n > 1);
    if !(interactive() && long_enough) {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {rate} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {prefix} {pos} {rate}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_style(
        bar.style()
            .with_key("rate", |state: &ProgressState, w: &mut dyn Write| {
                let _ = write!(w, "{:.0} msgs/s", state.per_sec());
            }),
    );
    bar.set_prefix(what.to_string());
    bar
}
