//! The user's own task: a JSONL file of `{"prompt": "...", "answer": "..."}`
//! lines with a verifier chosen by name.
//!
//! * Blank lines are skipped; other fields of a line are ignored; a line that
//!   is no JSON object, or lacks a string `prompt` or `answer`, or has an
//!   empty prompt, is an [`Error`] naming the file and the line
//!   (`at = "line 7"`, counted from 1).
//! * Verifiers: `exact` (the trimmed completion equals the trimmed answer),
//!   `numeric` (the completion's number, read after its last `####` or by
//!   the rules of [`answer::final_number`], equals the answer's number read
//!   the same way; a line whose answer has no number is an error),
//!   `regex:PATTERN` (the completion matches PATTERN anywhere; anchor it
//!   with `^…$` for a whole match; the answer is then only the gold
//!   completion for SFT).
//! * The split is by prompt: the distinct prompts are shuffled by the seed
//!   and the first ones held out, so a prompt written on several lines never
//!   lands in both splits. Both splits keep that shuffled order, and index
//!   `i` of a split reads example `i % size`.

use std::path::Path;

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde_json::Value;
use wapo_core::task::Split;
use wapo_core::task::text::{TextExample, TextTask, answer};

use crate::error::{Error, Result};

/// How much of the file is held out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeldOut {
    /// This fraction of the distinct prompts, in (0, 1), rounded, at least one.
    Fraction(f64),
    /// This many distinct prompts.
    Count(usize),
}

impl From<f64> for HeldOut {
    fn from(f: f64) -> Self {
        HeldOut::Fraction(f)
    }
}

impl From<usize> for HeldOut {
    fn from(n: usize) -> Self {
        HeldOut::Count(n)
    }
}

/// A verifier of [`JsonlTask`].
#[derive(Clone, Debug)]
pub enum Verifier {
    Exact,
    Numeric,
    Regex(Regex),
}

impl Verifier {
    /// The verifier named `name` (`exact`, `numeric`, `regex:PATTERN`);
    /// errors are about `file`.
    pub fn parse(name: &str, file: &Path) -> Result<Verifier> {
        match name {
            "exact" => Ok(Verifier::Exact),
            "numeric" => Ok(Verifier::Numeric),
            _ => match name.strip_prefix("regex:") {
                Some("") => Err(Error::at(file, "verifier", "regex: with an empty pattern matches everything")),
                Some(pattern) => Regex::new(pattern)
                    .map(Verifier::Regex)
                    .map_err(|e| Error::at(file, "verifier", format!("bad pattern `{pattern}`: {e}"))),
                None => Err(Error::at(
                    file,
                    "verifier",
                    format!("unknown verifier `{name}` (expected exact, numeric or regex:PATTERN)"),
                )),
            },
        }
    }

    /// What this verifier checks a completion against, from a line's answer;
    /// `None` when the answer cannot be checked (no number for `numeric`).
    fn target(&self, answer_text: &str) -> Option<String> {
        match self {
            Verifier::Exact => Some(answer_text.trim().to_string()),
            Verifier::Numeric => answer::hash_number(answer_text),
            Verifier::Regex(_) => Some(answer_text.to_string()),
        }
    }

    /// 1.0 when `completion` passes against `target`, else 0.0.
    pub fn reward(&self, target: &str, completion: &str) -> f64 {
        let pass = match self {
            Verifier::Exact => completion.trim() == target,
            Verifier::Numeric => answer::same_number(target, answer::hash_number(completion)),
            Verifier::Regex(re) => re.is_match(completion),
        };
        if pass { 1.0 } else { 0.0 }
    }
}

/// A JSONL task, split into training and held-out examples.
#[derive(Clone, Debug)]
pub struct JsonlTask {
    verifier: Verifier,
    train: Vec<TextExample>,
    held: Vec<TextExample>,
}

impl JsonlTask {
    /// Reads `path` and splits it by `seed`; see the module docs.
    pub fn load(path: &Path, verifier: &str, seed: u64, held_out: impl Into<HeldOut>) -> Result<JsonlTask> {
        let verifier = Verifier::parse(verifier, path)?;
        let bytes = std::fs::read(path).map_err(Error::io(path))?;
        let lines = read_lines(path, &bytes, |text| {
            let (prompt, answer_text) = parse_line(text)?;
            let target = verifier.target(&answer_text).ok_or("the answer has no number for the numeric verifier")?;
            Ok(TextExample { prompt, answer: answer_text, target })
        })?;
        let (train, held) = split(lines, seed, held_out.into()).map_err(|reason| Error::file(path, reason))?;
        Ok(JsonlTask { verifier, train, held })
    }

    /// The examples of `split`, in order.
    pub fn examples(&self, split: Split) -> &[TextExample] {
        match split {
            Split::Train => &self.train,
            Split::Heldout => &self.held,
        }
    }
}

/// What `parse` makes of each non-blank line of `bytes`, the contents of
/// `path`; a line that is no UTF-8 or that `parse` refuses is an error
/// naming `path` and the line (`line 7`, counted from 1). `\r\n` endings
/// and blank lines are fine. Every JSONL reader here goes through this.
pub(crate) fn read_lines<T>(
    path: &Path,
    bytes: &[u8],
    mut parse: impl FnMut(&str) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = || format!("line {}", i + 1);
        let text = std::str::from_utf8(raw).map_err(|e| Error::at(path, at(), format!("not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        out.push(parse(text).map_err(|reason| Error::at(path, at(), reason))?);
    }
    Ok(out)
}

/// The string fields `names` of the JSON object on one line; other fields
/// are ignored.
pub(crate) fn string_fields<const N: usize>(text: &str, names: [&str; N]) -> std::result::Result<[String; N], String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err(format!("expected a JSON object, found {}", kind(&value)));
    };
    let mut out = [const { String::new() }; N];
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = match fields.remove(name) {
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("field \"{name}\" is {}, expected a string", kind(&other))),
            None => return Err(format!("missing field \"{name}\"")),
        };
    }
    Ok(out)
}

/// The prompt and the answer of one non-blank line.
fn parse_line(text: &str) -> std::result::Result<(String, String), String> {
    let [prompt, answer_text] = string_fields(text, ["prompt", "answer"])?;
    if prompt.trim().is_empty() {
        return Err("field \"prompt\" is empty".to_string());
    }
    Ok((prompt, answer_text))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type Splits = (Vec<TextExample>, Vec<TextExample>);

/// Train and held-out examples: the distinct prompts shuffled by `seed`, the
/// first `held_out` of them held out.
fn split(lines: Vec<TextExample>, seed: u64, held_out: HeldOut) -> std::result::Result<Splits, String> {
    let mut prompts: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in &lines {
        if seen.insert(e.prompt.as_str()) {
            prompts.push(e.prompt.as_str());
        }
    }
    let n = prompts.len();
    let k = match held_out {
        HeldOut::Fraction(f) if f > 0.0 && f < 1.0 => ((f * n as f64).round() as usize).max(1),
        HeldOut::Fraction(f) => return Err(format!("held-out fraction {f} is not in (0, 1)")),
        HeldOut::Count(k) => k,
    };
    if k == 0 || k >= n {
        return Err(format!("{n} distinct prompts cannot give {k} held out and at least one for training"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..n).rev() {
        prompts.swap(i, rng.random_range(0..=i));
    }
    let rank: std::collections::HashMap<&str, usize> = prompts.iter().enumerate().map(|(r, &p)| (p, r)).collect();
    let ranks: Vec<usize> = lines.iter().map(|e| rank.get(e.prompt.as_str()).copied().unwrap_or(n)).collect();
    let mut ranked: Vec<(usize, TextExample)> = ranks.into_iter().zip(lines).collect();
    // Stable: the lines of one prompt keep their file order.
    ranked.sort_by_key(|(r, _)| *r);
    let (held, train): (Vec<_>, Vec<_>) = ranked.into_iter().partition(|(r, _)| *r < k);
    let strip = |v: Vec<(usize, TextExample)>| v.into_iter().map(|(_, e)| e).collect();
    Ok((strip(train), strip(held)))
}

impl TextTask for JsonlTask {
    fn name(&self) -> &str {
        "jsonl"
    }
    fn example(&self, split: Split, index: u64) -> TextExample {
        // Both splits hold at least one example: `split` refuses otherwise.
        let set = self.examples(split);
        set[(index % set.len() as u64) as usize].clone()
    }
    fn reward(&self, example: &TextExample, completion: &str) -> f64 {
        self.verifier.reward(&example.target, completion)
    }
    fn held_out_size(&self) -> usize {
        self.held.len()
    }
    fn train_size(&self) -> Option<usize> {
        Some(self.train.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn write(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("wapo-io-jsonl-{}-{name}.jsonl", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn lines(prompts: &[&str]) -> String {
        prompts.iter().map(|p| format!("{{\"prompt\": \"{p}\", \"answer\": \"{p}!\"}}\n")).collect()
    }

    const TEN: [&str; 10] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];

    fn prompts_of(t: &JsonlTask, split: Split) -> Vec<String> {
        t.examples(split).iter().map(|e| e.prompt.clone()).collect()
    }

    #[test]
    fn splits_are_disjoint_complete_and_seeded() {
        let path = write("ten", lines(&TEN).as_bytes());
        let t = JsonlTask::load(&path, "exact", 1, 3usize).unwrap();
        let (train, held) = (prompts_of(&t, Split::Train), prompts_of(&t, Split::Heldout));
        assert_eq!((train.len(), held.len()), (7, 3));
        assert_eq!((t.train_size(), t.held_out_size()), (Some(7), 3));
        let all: BTreeSet<String> = train.iter().chain(&held).cloned().collect();
        assert_eq!(all, TEN.iter().map(|p| p.to_string()).collect());
        let again = JsonlTask::load(&path, "exact", 1, 3usize).unwrap();
        assert_eq!(prompts_of(&again, Split::Heldout), held);
        assert_eq!(prompts_of(&again, Split::Train), train);
        let other = JsonlTask::load(&path, "exact", 2, 3usize).unwrap();
        assert_ne!(prompts_of(&other, Split::Heldout), held);
        // Index i reads example i % size.
        assert_eq!(t.example(Split::Heldout, 4), t.examples(Split::Heldout)[1]);
        assert_eq!(t.example(Split::Train, 7), t.examples(Split::Train)[0]);
        let e = &t.examples(Split::Train)[0];
        assert_eq!(e.answer, format!("{}!", e.prompt));
        assert_eq!(t.reward(e, &format!(" {}!\n", e.prompt)), 1.0);
        assert_eq!(t.name(), "jsonl");
    }

    #[test]
    fn fractions_round_and_hold_out_at_least_one() {
        let path = write("eight", lines(&TEN[..8]).as_bytes());
        assert_eq!(JsonlTask::load(&path, "exact", 0, 0.25).unwrap().held_out_size(), 2);
        assert_eq!(JsonlTask::load(&path, "exact", 0, 0.01).unwrap().held_out_size(), 1);
        assert_eq!(JsonlTask::load(&path, "exact", 0, 0.9).unwrap().held_out_size(), 7);
    }

    #[test]
    fn blank_lines_and_extra_fields_are_fine_and_repeated_prompts_stay_together() {
        let text = "\n{\"prompt\": \"a\", \"answer\": \"1\", \"id\": 5}\r\n   \n{\"prompt\": \"b\", \"answer\": \"2\"}\n{\"prompt\": \"c\", \"answer\": \"3\"}\n{\"prompt\": \"a\", \"answer\": \"one\"}";
        let path = write("blank", text.as_bytes());
        for seed in 0..20 {
            let t = JsonlTask::load(&path, "exact", seed, 1usize).unwrap();
            assert_eq!(t.examples(Split::Train).len() + t.examples(Split::Heldout).len(), 4);
            let (train, held) = (prompts_of(&t, Split::Train), prompts_of(&t, Split::Heldout));
            let train: BTreeSet<_> = train.into_iter().collect();
            assert!(held.iter().all(|p| !train.contains(p)), "seed {seed}");
            // The two lines of `a` keep their file order, side by side.
            let split = if train.contains("a") { Split::Train } else { Split::Heldout };
            let answers: Vec<&str> =
                t.examples(split).iter().filter(|e| e.prompt == "a").map(|e| e.answer.as_str()).collect();
            assert_eq!(answers, ["1", "one"]);
        }
    }

    fn error_of(name: &str, text: &[u8], verifier: &str) -> Error {
        let path = write(name, text);
        let err = JsonlTask::load(&path, verifier, 0, 1usize).unwrap_err();
        assert_eq!(err.file, path);
        err
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let good = "{\"prompt\": \"a\", \"answer\": \"1\"}\n\n";
        let cases: [(&str, &[u8], &str); 7] = [
            ("not-json", b"{\"prompt\": \"x\", \"answer\": \"y\"", "not JSON"),
            ("array", b"[1, 2]", "expected a JSON object, found an array"),
            ("no-prompt", b"{\"answer\": \"y\"}", "missing field \"prompt\""),
            ("number-prompt", b"{\"prompt\": 7, \"answer\": \"y\"}", "field \"prompt\" is a number, expected a string"),
            ("null-answer", b"{\"prompt\": \"x\", \"answer\": null}", "field \"answer\" is null, expected a string"),
            ("empty-prompt", b"{\"prompt\": \"  \", \"answer\": \"y\"}", "field \"prompt\" is empty"),
            ("utf8", b"{\"prompt\": \"\xff\", \"answer\": \"y\"}", "not UTF-8"),
        ];
        for (name, bad, reason) in cases {
            let text = [good.as_bytes(), bad, b"\n", good.as_bytes()].concat();
            let err = error_of(name, &text, "exact");
            assert_eq!(err.at.as_deref(), Some("line 3"), "{name}: {err}");
            assert!(err.reason.contains(reason), "{name}: {err}");
        }
        let err = error_of(
            "no-number",
            b"{\"prompt\": \"a\", \"answer\": \"1\"}\n{\"prompt\": \"b\", \"answer\": \"yes\"}",
            "numeric",
        );
        assert_eq!(err.at.as_deref(), Some("line 2"));
        assert!(err.reason.contains("no number"), "{err}");
    }

    #[test]
    fn verifier_names_and_sizes_are_checked() {
        let text = lines(&TEN[..4]);
        for (verifier, reason) in [
            ("fuzzy", "unknown verifier `fuzzy`"),
            ("regex:(", "bad pattern `(`"),
            ("regex:", "empty pattern"),
            ("Exact", "unknown"),
        ] {
            let err = error_of("verifier", text.as_bytes(), verifier);
            assert_eq!(err.at.as_deref(), Some("verifier"));
            assert!(err.reason.contains(reason), "{err}");
        }
        let path = write("sizes", text.as_bytes());
        for held in [
            HeldOut::Count(0),
            HeldOut::Count(4),
            HeldOut::Fraction(1.0),
            HeldOut::Fraction(0.0),
            HeldOut::Fraction(f64::NAN),
        ] {
            let err = JsonlTask::load(&path, "exact", 0, held).unwrap_err();
            assert_eq!((err.file.as_path(), err.at.as_deref()), (path.as_path(), None), "{held:?}");
        }
        assert!(JsonlTask::load(&path, "exact", 0, 3usize).is_ok());
        let err = error_of("empty", b"\n\n", "exact");
        assert!(err.reason.contains("0 distinct prompts"), "{err}");
        let missing = std::env::temp_dir().join("wapo-io-jsonl-no-such-file.jsonl");
        assert_eq!(JsonlTask::load(&missing, "exact", 0, 1usize).unwrap_err().file, missing);
    }

    fn verifier(name: &str) -> Verifier {
        Verifier::parse(name, Path::new("t.jsonl")).unwrap()
    }

    #[test]
    fn verifiers_on_tricky_strings() {
        let exact = verifier("exact");
        let t = exact.target("  Paris \n").unwrap();
        assert_eq!(t, "Paris");
        for (c, want) in [("Paris", 1.0), (" Paris\n", 1.0), ("paris", 0.0), ("Paris.", 0.0), ("", 0.0)] {
            assert_eq!(exact.reward(&t, c), want, "{c:?}");
        }
        let numeric = verifier("numeric");
        assert_eq!(numeric.target("The total is 1,234.").as_deref(), Some("1234"));
        assert_eq!(numeric.target("3 + 4 = 7\nthen 7 * 2 = 14\n#### 14").as_deref(), Some("14"));
        let t = numeric.target("-5").unwrap();
        for (c, want) in [
            ("-5", 1.0),
            ("\u{2212}5", 1.0),
            ("Answer: -5.", 1.0),
            ("#### -5", 1.0),
            ("5", 0.0),
            ("", 0.0),
            ("none", 0.0),
        ] {
            assert_eq!(numeric.reward(&t, c), want, "{c:?}");
        }
        let big = "98765432109876543210987654321098765432100";
        assert_eq!(numeric.reward(&numeric.target(big).unwrap(), &format!("\\boxed{{{big}}}")), 1.0);
        let regex = verifier("regex:^(yes|no)$");
        for (c, want) in [("yes", 1.0), ("no", 1.0), ("yes!", 0.0), ("maybe", 0.0), ("", 0.0)] {
            assert_eq!(regex.reward("", c), want, "{c:?}");
        }
        assert_eq!(verifier(r"regex:\d+").reward("", "abc 12"), 1.0);
    }

    proptest! {
        #[test]
        fn no_verifier_panics_on_arbitrary_text(target in any::<String>(), completion in any::<String>()) {
            for name in ["exact", "numeric", "regex:^\\s*-?\\d+\\s*$"] {
                let v = verifier(name);
                let r = v.reward(&target, &completion);
                prop_assert!(r == 0.0 || r == 1.0);
                if let Some(t) = v.target(&target) {
                    let r = v.reward(&t, &completion);
                    prop_assert!(r == 0.0 || r == 1.0);
                }
            }
        }

        #[test]
        fn no_line_parse_panics(line in any::<String>(), json in "[{}\\[\\]\":, a-z0-9]{0,60}") {
            let _ = parse_line(&line);
            let _ = parse_line(&json);
        }
    }
}
