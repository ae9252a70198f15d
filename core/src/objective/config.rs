//! `ObjectiveConfig`: one documented struct for every objective of the family.

use super::spec::{Clip, Ratio, SeqFilter, Spec};
use crate::error::{Error, Result};

/// The objectives of `OBJECTIVE.md` §4.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Objective {
    Grpo,
    DrGrpo,
    Dapo,
    DrDapo,
    DrDapoSeq,
    Gspo,
    Raft,
    RaftPlusPlus,
    Wapo,
}

/// How advantages are formed from the rewards of a group (`OBJECTIVE.md` §1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum AdvantageMode {
    /// (r − mean) / (std + 1e-8), population std.
    Normalized,
    /// r − mean.
    Centered,
    /// r.
    Raw,
}

/// Aggregation level (`OBJECTIVE.md` §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Aggregation {
    Seq,
    Group,
    Global,
}

impl Objective {
    pub const ALL: [Objective; 9] = [
        Objective::Grpo,
        Objective::DrGrpo,
        Objective::Dapo,
        Objective::DrDapo,
        Objective::DrDapoSeq,
        Objective::Gspo,
        Objective::Raft,
        Objective::RaftPlusPlus,
        Objective::Wapo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Objective::Grpo => "grpo",
            Objective::DrGrpo => "dr_grpo",
            Objective::Dapo => "dapo",
            Objective::DrDapo => "dr_dapo",
            Objective::DrDapoSeq => "dr_dapo_seq",
            Objective::Gspo => "gspo",
            Objective::Raft => "raft",
            Objective::RaftPlusPlus => "raft++",
            Objective::Wapo => "wapo",
        }
    }

    pub fn from_name(name: &str) -> Option<Objective> {
        Objective::ALL.into_iter().find(|o| o.name() == name)
    }

    pub fn advantage_mode(self) -> AdvantageMode {
        self.spec().advantage
    }

    /// Winners-only objectives keep a sequence only when its advantage is > 0.
    pub fn winners_only(self) -> bool {
        self.spec().filter == SeqFilter::Winners
    }

    pub fn default_aggregation(self) -> Aggregation {
        self.spec().weights.level()
    }

    /// Whether the objective reads `clip_low`/`clip_high` (else `clip_eps`).
    pub fn uses_clip_low_high(self) -> bool {
        self.spec().clip == Clip::LowHigh
    }

    /// Whether the objective needs `clip_eps`.
    pub fn needs_clip_eps(self) -> bool {
        matches!(self.spec().clip, Clip::Symmetric | Clip::Upper)
    }
}

impl core::fmt::Display for Objective {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Objective {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Objective::from_name(s).ok_or(Error::Config {
            field: "objective",
            reason: "unknown objective (expected grpo, dr_grpo, dapo, dr_dapo, dr_dapo_seq, gspo, raft, raft++ or wapo)",
        })
    }
}

/// A set of token bins (`OBJECTIVE.md` §3): bit per bin, see the `BinSpec::*` constants.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub struct BinSpec(pub u8);

impl BinSpec {
    pub const NONE: BinSpec = BinSpec(0);
    pub const POS_PEAK: BinSpec = BinSpec(1);
    pub const POS_VALLEY: BinSpec = BinSpec(2);
    pub const NEG_PEAK: BinSpec = BinSpec(4);
    pub const NEG_VALLEY: BinSpec = BinSpec(8);
    pub const ALL: BinSpec = BinSpec(15);
    /// Bin names in bin-code order (code = 2·is_neg + is_valley).
    pub const NAMES: [&'static str; 4] = ["pos_peak", "pos_valley", "neg_peak", "neg_valley"];

    /// Parses one spec: a full bin, a type (`peak`, `valley`) or a sign (`pos`, `neg`).
    pub fn parse(name: &str) -> Option<BinSpec> {
        Some(match name {
            "pos_peak" => Self::POS_PEAK,
            "pos_valley" => Self::POS_VALLEY,
            "neg_peak" => Self::NEG_PEAK,
            "neg_valley" => Self::NEG_VALLEY,
            "peak" => BinSpec(Self::POS_PEAK.0 | Self::NEG_PEAK.0),
            "valley" => BinSpec(Self::POS_VALLEY.0 | Self::NEG_VALLEY.0),
            "pos" => BinSpec(Self::POS_PEAK.0 | Self::POS_VALLEY.0),
            "neg" => BinSpec(Self::NEG_PEAK.0 | Self::NEG_VALLEY.0),
            _ => return None,
        })
    }
    pub fn union(self, other: BinSpec) -> BinSpec {
        BinSpec(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether the bin with code `code` (0..4) is in the set.
    pub fn contains_code(self, code: usize) -> bool {
        self.0 & (1 << code) != 0
    }
}

/// Every knob of the objective family. Build with [`ObjectiveConfig::new`] and
/// the `with_*` helpers, or field by field; [`ObjectiveConfig::validate`] runs
/// before every evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveConfig {
    pub objective: Objective,
    /// ε of grpo, dr_grpo, gspo, raft++ and wapo: clip to [1−ε, 1+ε] (raft++, wapo: (−∞, 1+ε]).
    pub clip_eps: Option<f64>,
    /// Lower clip bound of dapo, dr_dapo, dr_dapo_seq.
    pub clip_low: f64,
    /// Upper clip bound of dapo, dr_dapo, dr_dapo_seq.
    pub clip_high: f64,
    /// `false` drops the ratio: L = −ℓ·A (for wapo: REINFORCE on winners).
    pub importance_sampling: bool,
    /// Overrides the objective's default aggregation level.
    pub aggregation: Option<Aggregation>,
    /// Recompute the weights from the final keep mask (§5).
    pub normalize_by_kept_tokens: bool,
    /// Keep only these bins (empty: no filter).
    pub include_bins: BinSpec,
    /// Drop these bins (empty: no filter).
    pub exclude_bins: BinSpec,
    /// Opt-in: additionally drop every sequence with A ≥ 0.
    pub mask_positive_advantages: bool,
    /// L_max, WAPO's fixed denominator.
    pub max_seq_len: usize,
    /// Sampling temperature τ (logits level).
    pub temperature: f64,
}

impl ObjectiveConfig {
    /// The paper's defaults for `objective`: ε = 0.2, DAPO's (0.8, 1.28).
    pub fn new(objective: Objective, max_seq_len: usize) -> Self {
        ObjectiveConfig {
            objective,
            clip_eps: if objective.needs_clip_eps() { Some(0.2) } else { None },
            clip_low: 0.8,
            clip_high: 1.28,
            importance_sampling: true,
            aggregation: None,
            normalize_by_kept_tokens: false,
            include_bins: BinSpec::NONE,
            exclude_bins: BinSpec::NONE,
            mask_positive_advantages: false,
            max_seq_len,
            temperature: 1.0,
        }
    }

    /// The objective's row of the table with this configuration's
    /// overrides: `importance_sampling = false` drops the ratio, an explicit
    /// `aggregation` picks that level's weighting.
    pub fn spec(&self) -> Spec {
        let mut spec = self.objective.spec();
        if !self.importance_sampling {
            spec.ratio = Ratio::None;
        }
        if let Some(level) = self.aggregation {
            spec.weights = spec.weights.at_level(level);
        }
        spec
    }

    pub fn aggregation(&self) -> Aggregation {
        self.spec().weights.level()
    }

    pub fn advantage_mode(&self) -> AdvantageMode {
        self.objective.advantage_mode()
    }

    /// Clip bounds (lo, hi) of the ratio; lo = −∞ for raft++ and wapo, and
    /// (−∞, ∞) for raft, which has no ratio.
    pub fn clip_bounds(&self) -> (f64, f64) {
        let eps = self.clip_eps.unwrap_or(0.2);
        match self.objective.spec().clip {
            Clip::Symmetric => (1.0 - eps, 1.0 + eps),
            Clip::Upper => (f64::NEG_INFINITY, 1.0 + eps),
            Clip::LowHigh => (self.clip_low, self.clip_high),
            Clip::None => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    /// Whether the token-bin filter is active.
    pub fn bins_active(&self) -> bool {
        !self.include_bins.is_empty() || !self.exclude_bins.is_empty()
    }

    /// Whether the weights w_i read ℓ: kept-token weights count the keep
    /// mask, whose token bins depend on p = exp(ℓ). A minibatch split into
    /// micro-batches then needs every row's ℓ before its [`super::Plan`].
    pub fn weights_read_logprobs(&self) -> bool {
        self.normalize_by_kept_tokens && self.bins_active()
    }

    /// The bins the keep mask lets through.
    pub fn kept_bins(&self) -> BinSpec {
        let inc = if self.include_bins.is_empty() { BinSpec::ALL } else { self.include_bins };
        BinSpec(inc.0 & !self.exclude_bins.0 & BinSpec::ALL.0)
    }

    /// Checks ranges; names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason| Err(Error::Config { field, reason });
        if self.objective.needs_clip_eps() {
            match self.clip_eps {
                None => return bad("clip_eps", "missing: required by this objective"),
                Some(e) if !e.is_finite() || e < 0.0 => {
                    return bad("clip_eps", "must be a finite number ≥ 0");
                }
                _ => {}
            }
        }
        if self.objective.uses_clip_low_high() {
            if !self.clip_low.is_finite() || !self.clip_high.is_finite() {
                return bad("clip_low", "clip bounds must be finite");
            }
            if self.clip_low > self.clip_high {
                return bad("clip_low", "must be ≤ clip_high");
            }
        }
        if self.max_seq_len == 0 {
            return bad("max_seq_len", "must be ≥ 1");
        }
        if !self.temperature.is_finite() || self.temperature <= 0.0 {
            return bad("temperature", "must be a finite number > 0");
        }
        Ok(())
    }
}
