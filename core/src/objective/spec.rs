//! The objective family as a table (`OBJECTIVE.md` §1–§5): each objective is
//! one [`Spec`] row, and the engine reads only the row, never the
//! objective's name. WAPO's row is [`super::wapo::SPEC`].

use super::AdvantageMode;
use super::Objective;
use super::config::Aggregation;

/// Which sequences count (`OBJECTIVE.md` §3, the sequence filter S).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SeqFilter {
    /// Every sequence.
    All,
    /// Only sequences with A > 0.
    Winners,
}

/// Where the importance ratio lives (`OBJECTIVE.md` §2, §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Ratio {
    /// ρ_it = exp(ℓ_it − ℓ°_it) per token, in the clipped surrogate.
    Token,
    /// GSPO's s_i = exp(Σ_t mask·(ℓ − ℓ°) / (n_i + 1e-8)), one per sequence.
    Sequence,
    /// No ratio: L = −ℓ·A (or −ℓ where the loss is not advantage-weighted).
    None,
}

/// The clip range (lo, hi) of the surrogate (`OBJECTIVE.md` §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Clip {
    /// [1 − ε, 1 + ε] from `clip_eps`.
    Symmetric,
    /// (−∞, 1 + ε] from `clip_eps`.
    Upper,
    /// [`clip_low`, `clip_high`].
    LowHigh,
    /// Nothing clips (no ratio).
    None,
}

/// The weights w_i and the normalizer D (`OBJECTIVE.md` §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Weighting {
    /// w = 1/max(n_i, 1), D = max(#kept sequences, 1).
    Seq,
    /// w = 1/max(kept tokens of the group, 1), D = max(#contributing groups, 1).
    Group,
    /// WAPO's: w = 1/(G_i·L_max), D = max(#groups with a winner, 1).
    GroupFixed,
    /// w = 1, D = max(kept tokens, 1).
    Global,
    /// Dr. GRPO's: w = 1, D = N·max(max_i n_i, 1).
    GlobalFixed,
}

impl Weighting {
    /// The aggregation level this weighting belongs to.
    pub fn level(self) -> Aggregation {
        match self {
            Weighting::Seq => Aggregation::Seq,
            Weighting::Group | Weighting::GroupFixed => Aggregation::Group,
            Weighting::Global | Weighting::GlobalFixed => Aggregation::Global,
        }
    }

    /// The weighting of an explicit `aggregation = level`. WAPO's fixed
    /// weight is what the group level means for WAPO, so it stays; Dr.
    /// GRPO's constant normalizer is only its default, so an explicit
    /// `global` uses the kept-token count (`OBJECTIVE.md` §5).
    pub fn at_level(self, level: Aggregation) -> Weighting {
        match level {
            Aggregation::Seq => Weighting::Seq,
            Aggregation::Group if self == Weighting::GroupFixed => Weighting::GroupFixed,
            Aggregation::Group => Weighting::Group,
            Aggregation::Global => Weighting::Global,
        }
    }
}

/// One objective of the family: everything the engine needs to know about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Spec {
    /// How advantages are formed (§1).
    pub advantage: AdvantageMode,
    /// Which sequences count (§3).
    pub filter: SeqFilter,
    /// Token, sequence or no importance ratio (§4).
    pub ratio: Ratio,
    /// The clip range of the ratio (§4).
    pub clip: Clip,
    /// Whether the per-token loss carries A (false: RAFT's L = −ℓ).
    pub advantage_weighted: bool,
    /// The default weights w_i and normalizer D (§5).
    pub weights: Weighting,
}

const fn row(advantage: AdvantageMode, ratio: Ratio, clip: Clip, weights: Weighting) -> Spec {
    Spec { advantage, filter: SeqFilter::All, ratio, clip, advantage_weighted: true, weights }
}

use AdvantageMode::{Centered, Normalized, Raw};

pub const GRPO: Spec = row(Normalized, Ratio::Token, Clip::Symmetric, Weighting::Seq);
pub const DR_GRPO: Spec = row(Centered, Ratio::Token, Clip::Symmetric, Weighting::GlobalFixed);
pub const DAPO: Spec = row(Normalized, Ratio::Token, Clip::LowHigh, Weighting::Group);
pub const DR_DAPO: Spec = row(Centered, Ratio::Token, Clip::LowHigh, Weighting::Group);
pub const DR_DAPO_SEQ: Spec = row(Centered, Ratio::Token, Clip::LowHigh, Weighting::Seq);
pub const GSPO: Spec = row(Normalized, Ratio::Sequence, Clip::Symmetric, Weighting::Seq);
/// SFT on winners: L = −ℓ on sequences with r > 0.
pub const RAFT: Spec = Spec {
    advantage: Raw,
    filter: SeqFilter::Winners,
    ratio: Ratio::None,
    clip: Clip::None,
    advantage_weighted: false,
    weights: Weighting::Seq,
};
pub const RAFT_PLUS_PLUS: Spec =
    Spec { filter: SeqFilter::Winners, ..row(Raw, Ratio::Token, Clip::Upper, Weighting::Seq) };

impl Objective {
    /// This objective's row of the table.
    pub const fn spec(self) -> Spec {
        match self {
            Objective::Grpo => GRPO,
            Objective::DrGrpo => DR_GRPO,
            Objective::Dapo => DAPO,
            Objective::DrDapo => DR_DAPO,
            Objective::DrDapoSeq => DR_DAPO_SEQ,
            Objective::Gspo => GSPO,
            Objective::Raft => RAFT,
            Objective::RaftPlusPlus => RAFT_PLUS_PLUS,
            Objective::Wapo => super::wapo::SPEC,
        }
    }
}
