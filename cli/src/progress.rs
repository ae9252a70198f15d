//! Progress display: indicatif bars with the live loss, reward and entropy
//! on a terminal; plain lines at each held-out check otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use wapo_core::rl::{Metrics, metric};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bars,
    Lines,
    Silent,
}

pub struct Progress {
    mode: Mode,
    /// Prefix of every line, e.g. the run name in `wapo compare`.
    tag: String,
}

/// One phase's display (SFT or RL).
pub struct Phase<'a> {
    out: &'a Progress,
    bar: Option<ProgressBar>,
    label: String,
}

impl Progress {
    /// Bars when `bars` and stderr is a terminal; plain lines otherwise.
    pub fn new(bars: bool, tag: impl Into<String>) -> Self {
        let mode = if bars && std::io::stderr().is_terminal() { Mode::Bars } else { Mode::Lines };
        Progress { mode, tag: tag.into() }
    }

    /// No output at all (tests).
    pub fn silent() -> Self {
        Progress { mode: Mode::Silent, tag: String::new() }
    }

    pub fn phase(&self, label: &str, total: u64, done: u64) -> Phase<'_> {
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>4} [{elapsed_precise}] {bar:28.cyan/blue} {pos:>4}/{len:4} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar.set_position(done);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Phase { out: self, bar, label: label.to_string() }
    }

    /// A line of text, above the bars if there are any.
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Silent => {}
            _ if self.tag.is_empty() => eprintln!("{text}"),
            _ => eprintln!("[{}] {text}", self.tag),
        }
    }
}

impl Phase<'_> {
    /// Advances to `step` and shows the live metrics of `m`.
    pub fn step(&self, step: u64, m: &Metrics) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            bar.set_message(summary(m));
        }
    }

    /// A held-out check, printed as a line that stays.
    pub fn check(&self, step: u64, m: &Metrics) {
        self.note(step, &summary(m));
    }

    /// A line about `step` that stays, e.g. a skipped update.
    pub fn note(&self, step: u64, text: &str) {
        let text = format!("{} step {step}: {text}", self.label);
        match &self.bar {
            Some(bar) => bar.println(text),
            None => self.out.line(&text),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// The metrics worth a glance, in a fixed order.
fn summary(m: &Metrics) -> String {
    const SHOWN: [(&str, &str); 7] = [
        ("sft/loss", "loss"),
        ("rollout/reward_mean", "reward"),
        ("entropy/mean", "entropy"),
        ("objective/clipped_fraction", "clipped"),
        ("eval/greedy_exact", "held-out greedy"),
        ("eval/pass@k", "pass@k"),
        ("eval/entropy_mean", "held-out entropy"),
    ];
    SHOWN.iter().filter_map(|(key, name)| Some(format!("{name} {:.3}", metric(m, key)?))).collect::<Vec<_>>().join("  ")
}
