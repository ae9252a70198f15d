//! The typed values of the config: backends, tasks, objectives, aggregation
//! levels and token-bin sets, each read from its name.

use wapo_core::{Aggregation, BinSpec, Objective};

use crate::config::knob::{Knob, choice, one_of};

choice! {
    /// Where the policy runs.
    pub enum Backend { Cpu = "cpu", Wgpu = "wgpu" }
}

choice! {
    /// The built-in tasks: the toy tasks of `wapo_core::task` and the text
    /// tasks of `wapo_core::task::text` (which need a pretrained model;
    /// gsm8k reads its problems with `wapo_io::gsm8k`, jsonl its file with
    /// `wapo_io::jsonl`).
    pub enum TaskName {
        Recurrence = "recurrence", Add = "add", Sort = "sort", Reverse = "reverse",
        Arith = "arith", Countdown = "countdown", Gsm = "gsm", Gsm8k = "gsm8k", Jsonl = "jsonl"
    }
}

choice! {
    /// How `arith` writes its operations.
    pub enum ArithStyleChoice { Symbols = "symbols", Words = "words", Mixed = "mixed" }
}

choice! {
    /// The objective's aggregation level; `default` is the objective's own.
    pub enum AggregationChoice { Default = "default", Seq = "seq", Group = "group", Global = "global" }
}

impl TaskName {
    /// Whether the task is text (prompts and answers in words, for a
    /// pretrained model with a tokenizer).
    pub fn is_text(self) -> bool {
        matches!(self, TaskName::Arith | TaskName::Countdown | TaskName::Gsm | TaskName::Gsm8k | TaskName::Jsonl)
    }
}

impl ArithStyleChoice {
    pub fn style(self) -> wapo_core::task::text::arith::ArithStyle {
        use wapo_core::task::text::arith::ArithStyle;
        match self {
            ArithStyleChoice::Symbols => ArithStyle::Symbols,
            ArithStyleChoice::Words => ArithStyle::Words,
            ArithStyleChoice::Mixed => ArithStyle::Mixed,
        }
    }
}

impl AggregationChoice {
    pub fn level(self) -> Option<Aggregation> {
        match self {
            AggregationChoice::Default => None,
            AggregationChoice::Seq => Some(Aggregation::Seq),
            AggregationChoice::Group => Some(Aggregation::Group),
            AggregationChoice::Global => Some(Aggregation::Global),
        }
    }
}

impl Knob for Objective {
    fn expected() -> String {
        one_of(Objective::ALL.iter().map(|o| o.name()))
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        Objective::from_name(v.as_str()?)
    }
    fn from_flag(s: &str) -> Option<Self> {
        Objective::from_name(s)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.name().to_string()))
    }
}

/// Bin specs as written (`pos_peak`, `valley`, `neg`, ...), comma-separated;
/// empty: no filter. Checked when read, so [`Bins::spec`] cannot fail.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bins(String);

const BIN_NAMES: &str = "pos_peak, pos_valley, neg_peak, neg_valley, peak, valley, pos or neg";

impl Bins {
    pub fn parse(text: &str) -> Option<Bins> {
        let ok = text.split(',').map(str::trim).filter(|s| !s.is_empty()).all(|p| BinSpec::parse(p).is_some());
        ok.then(|| Bins(text.to_string()))
    }

    pub fn spec(&self) -> BinSpec {
        self.0.split(',').map(str::trim).filter_map(BinSpec::parse).fold(BinSpec::NONE, BinSpec::union)
    }
}

impl Knob for Bins {
    fn expected() -> String {
        format!("comma-separated bins ({BIN_NAMES})")
    }
    fn from_toml(v: &toml::Value) -> Option<Self> {
        Bins::parse(v.as_str()?)
    }
    fn from_flag(s: &str) -> Option<Self> {
        Bins::parse(s)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.0.clone()))
    }
}
