//! When an RL run has collapsed: one rule, read off the records of the run's
//! `metrics.jsonl`, shared by `wapo compare` and `wapo sweep` (docs/SWEEP.md).
//!
//! The records are walked in the order they were written (the RL record of
//! step s, then the held-out evaluation after step s), and the first of
//! these that holds fires:
//!
//! - `non_finite`: a watched value of an RL record (rollout entropy, loss,
//!   gradient norm, rollout reward) or an evaluation (held-out greedy exact
//!   match) is NaN or infinite, or the step skipped its update because a
//!   loss, gradient or parameter turned non-finite;
//! - `entropy_low` / `entropy_high`: the rollout entropy `entropy/mean` of an
//!   RL step is below `entropy_low_ratio × H₀` or above
//!   `entropy_high_ratio × H₀`, H₀ being that of the first RL step (its
//!   rollouts come from the starting policy; with several minibatches the
//!   later ones are scored after the first optimizer steps); strict
//!   inequalities, so a value on the band's edge is inside;
//! - `reward_drop`: a held-out greedy exact match is more than `reward_drop`
//!   below the best one of the run so far (the evaluation before RL counts).
//!
//! A run is judged relative to its own start, so the rule means the same on
//! tasks whose entropies differ by orders of magnitude.

use std::fmt;

use crate::config::TrainConfig;
use crate::run_dir::{self, Record};

/// The rollout entropy the band is about.
pub const ENTROPY: &str = "entropy/mean";
/// The held-out reward whose drop counts.
pub const HELDOUT: &str = "eval/greedy_exact";
/// Values of an RL record that must stay finite.
const RL_WATCHED: [&str; 4] = [ENTROPY, "objective/loss", "objective/grad_norm", "rollout/reward_mean"];
/// The running count of skipped updates.
const SKIPPED: &str = "objective/skipped_updates";

/// The rule's thresholds (`[compare]` of the config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub entropy_low_ratio: f64,
    pub entropy_high_ratio: f64,
    pub reward_drop: f64,
}

impl Thresholds {
    pub fn of(cfg: &TrainConfig) -> Self {
        let c = &cfg.compare;
        Thresholds {
            entropy_low_ratio: c.entropy_low_ratio,
            entropy_high_ratio: c.entropy_high_ratio,
            reward_drop: c.reward_drop,
        }
    }
}

/// Which part of the rule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    NonFinite,
    EntropyLow,
    EntropyHigh,
    RewardDrop,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::NonFinite => "non_finite",
            Rule::EntropyLow => "entropy_low",
            Rule::EntropyHigh => "entropy_high",
            Rule::RewardDrop => "reward_drop",
        }
    }
}

/// A collapse: the rule, the RL step of the record that fired it, and the
/// values involved.
#[derive(Clone, Debug, PartialEq)]
pub struct Collapse {
    pub rule: Rule,
    pub step: u64,
    pub detail: String,
}

impl fmt::Display for Collapse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at step {}: {}", self.rule.name(), self.step, self.detail)
    }
}

/// The first collapse in `records` (a run's metrics, in file order), if any.
pub fn detect(t: &Thresholds, records: &[Record]) -> Option<Collapse> {
    let mut start_entropy: Option<f64> = None;
    let mut skipped = 0.0;
    let mut best = f64::NEG_INFINITY;
    let fire = |rule, step, detail: String| Some(Collapse { rule, step, detail });
    for r in records {
        let step = run_dir::step(r);
        match run_dir::phase(r) {
            "rl" => {
                for key in RL_WATCHED {
                    if let Some(v) = run_dir::value(r, key).filter(|v| !v.is_finite()) {
                        return fire(Rule::NonFinite, step, format!("{key} = {v}"));
                    }
                }
                if let Some(n) = run_dir::value(r, SKIPPED) {
                    if n > skipped {
                        return fire(Rule::NonFinite, step, "update skipped for a non-finite value".into());
                    }
                    skipped = n;
                }
                let Some(h) = run_dir::value(r, ENTROPY) else { continue };
                let h0 = *start_entropy.get_or_insert(h);
                if h < t.entropy_low_ratio * h0 {
                    return fire(Rule::EntropyLow, step, format!("entropy {h:.4} < {} × {h0:.4}", t.entropy_low_ratio));
                }
                if h > t.entropy_high_ratio * h0 {
                    return fire(
                        Rule::EntropyHigh,
                        step,
                        format!("entropy {h:.4} > {} × {h0:.4}", t.entropy_high_ratio),
                    );
                }
            }
            "eval" => {
                let Some(g) = run_dir::value(r, HELDOUT) else { continue };
                if !g.is_finite() {
                    return fire(Rule::NonFinite, step, format!("{HELDOUT} = {g}"));
                }
                best = best.max(g);
                if best - g > t.reward_drop {
                    return fire(Rule::RewardDrop, step, format!("held-out {g:.3}, best {best:.3}"));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_dir::record;

    const T: Thresholds = Thresholds { entropy_low_ratio: 0.2, entropy_high_ratio: 3.0, reward_drop: 0.3 };

    fn rl(step: u64, entropy: f64) -> Record {
        record(
            "rl",
            step,
            &vec![
                (ENTROPY.into(), entropy),
                ("objective/loss".into(), 0.1),
                ("objective/grad_norm".into(), 0.5),
                ("rollout/reward_mean".into(), 0.4),
                (SKIPPED.into(), 0.0),
            ],
        )
    }

    fn eval(step: u64, greedy: f64) -> Record {
        record("eval", step, &vec![(HELDOUT.into(), greedy)])
    }

    /// A run: eval 0, then RL steps 1..=n with the entropies given, an
    /// evaluation after every second step with the rewards given in turn.
    fn run(entropies: &[f64], rewards: &[f64]) -> Vec<Record> {
        let mut out = vec![record("sft", 1, &vec![(ENTROPY.into(), 100.0)]), eval(0, rewards[0])];
        let mut next = rewards[1..].iter();
        for (i, &h) in entropies.iter().enumerate() {
            let s = i as u64 + 1;
            out.push(rl(s, h));
            if s.is_multiple_of(2)
                && let Some(&g) = next.next()
            {
                out.push(eval(s, g));
            }
        }
        out
    }

    fn fired(records: &[Record]) -> Option<(&'static str, u64)> {
        detect(&T, records).map(|c| (c.rule.name(), c.step))
    }

    #[test]
    fn a_steady_run_does_not_collapse() {
        assert_eq!(fired(&run(&[0.5, 0.45, 0.55, 0.4, 0.5, 0.6], &[0.4, 0.45, 0.5, 0.48])), None);
        assert_eq!(fired(&[]), None);
    }

    #[test]
    fn entropy_just_inside_the_band_does_not_fire() {
        // 0.5 × 0.2 = 0.1 and 0.5 × 3 = 1.5 are on the edges, thus inside.
        assert_eq!(fired(&run(&[0.5, 0.1, 1.5, 0.1001, 1.4999], &[0.4, 0.4, 0.4])), None);
    }

    #[test]
    fn entropy_below_the_band_fires_at_its_step() {
        assert_eq!(fired(&run(&[0.5, 0.3, 0.2, 0.0999, 0.01, 0.5], &[0.4, 0.4, 0.4, 0.4])), Some(("entropy_low", 4)));
    }

    #[test]
    fn entropy_above_the_band_fires_at_its_step() {
        assert_eq!(fired(&run(&[0.5, 0.9, 1.5001, 3.0], &[0.4, 0.4, 0.4])), Some(("entropy_high", 3)));
    }

    #[test]
    fn the_band_is_relative_to_the_first_rl_step() {
        // An absolute band around 0.01..2 would flag all of these; relative
        // to 0.004 they stay inside ...
        assert_eq!(fired(&run(&[0.004, 0.003, 0.0009, 0.011], &[0.4, 0.4, 0.4])), None);
        // ... and the same trajectory ×1000 does too.
        assert_eq!(fired(&run(&[4.0, 3.0, 0.9, 11.0], &[0.4, 0.4, 0.4])), None);
        assert_eq!(fired(&run(&[4.0, 3.0, 0.79, 11.0], &[0.4, 0.4, 0.4])), Some(("entropy_low", 3)));
    }

    #[test]
    fn a_reward_drop_just_below_the_threshold_does_not_fire() {
        // Best 0.6 at step 2, then 0.31: a drop of 0.29 < 0.3.
        assert_eq!(fired(&run(&[0.5; 6], &[0.4, 0.6, 0.31, 0.35])), None);
    }

    #[test]
    fn a_reward_drop_past_the_threshold_fires_at_the_evaluation() {
        // Best 0.6 at step 2; 0.35 at step 4 (0.25 below), 0.29 at step 6 (0.31 below).
        assert_eq!(fired(&run(&[0.5; 8], &[0.4, 0.6, 0.35, 0.29, 0.6])), Some(("reward_drop", 6)));
        // The evaluation before RL counts as the best so far.
        assert_eq!(fired(&run(&[0.5; 4], &[0.7, 0.5, 0.39])), Some(("reward_drop", 4)));
    }

    #[test]
    fn a_nan_fires_non_finite_at_its_step() {
        let mut rs = run(&[0.5, 0.5, 0.5, 0.5], &[0.4, 0.4, 0.4]);
        assert_eq!(fired(&rs), None);
        let third = rs.iter_mut().find(|r| run_dir::phase(r) == "rl" && run_dir::step(r) == 3).unwrap();
        third.insert("objective/loss".into(), serde_json::Value::Null);
        assert_eq!(fired(&rs), Some(("non_finite", 3)));

        let mut rs = run(&[0.5, 0.5, 0.5, 0.5], &[0.4, 0.4, 0.4]);
        let last = rs.iter_mut().rfind(|r| run_dir::phase(r) == "eval").unwrap();
        last.insert(HELDOUT.into(), serde_json::Value::Null);
        assert_eq!(fired(&rs), Some(("non_finite", 4)));

        // A NaN entropy is non-finite, not outside the band.
        assert_eq!(fired(&run(&[0.5, f64::NAN, 0.5], &[0.4, 0.4])), Some(("non_finite", 2)));
        assert_eq!(fired(&run(&[f64::INFINITY, 0.5], &[0.4, 0.4])), Some(("non_finite", 1)));
    }

    #[test]
    fn a_skipped_update_fires_non_finite() {
        let mut rs = run(&[0.5, 0.5, 0.5, 0.5], &[0.4, 0.4, 0.4]);
        for r in rs.iter_mut().filter(|r| run_dir::phase(r) == "rl" && run_dir::step(r) >= 3) {
            r.insert(SKIPPED.into(), serde_json::Value::from(1.0));
        }
        assert_eq!(fired(&rs), Some(("non_finite", 3)));
    }

    #[test]
    fn the_earliest_rule_wins() {
        // Entropy leaves the band at step 5, the reward drops at step 4.
        assert_eq!(fired(&run(&[0.5, 0.5, 0.5, 0.5, 0.05, 0.5], &[0.4, 0.8, 0.4, 0.4])), Some(("reward_drop", 4)));
    }
}
