//! Fuzzing objective case files (`docs/CASES.md`): golden cases of each
//! objective, at token and logits level, mutated as JSON. A case that
//! parses must evaluate on the f64 host reference to a finite loss or to an
//! error; a case refused must be refused with an error naming a field.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use harness::json::mutated;
use harness::{Outcome, fuzz};
use serde_json::Value;
use wapo_core::Error;
use wapo_core::case::Case;
use wapo_core::host::HostTensor;

/// Small golden cases: every objective family, token and logits level.
const SEEDS: [&str; 6] = [
    "wapo005_wapo.json",
    "case025_gspo.json",
    "case036_raft.json",
    "case014_dapo.json",
    "case006_grpo.json",
    "case002_raft++.json",
];

fn seeds() -> Vec<Value> {
    SEEDS
        .iter()
        .map(|name| {
            let path = format!("{}/data/golden/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            let mut case: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            // The expected outputs are not read by the parser; mutations go where they are.
            case.as_object_mut().map(|o| o.remove("expected"));
            case
        })
        .collect()
}

fn check(bytes: &[u8]) -> Result<Outcome, String> {
    // Reading the file as text is the caller's; a case is text.
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(Outcome::Refused) };
    let case = match Case::parse(text) {
        Ok(c) => c,
        Err(Error::Case { field, reason }) if !field.is_empty() && !reason.is_empty() => return Ok(Outcome::Refused),
        Err(e) => return Err(format!("refused without naming a field: {e}")),
    };
    match case.evaluate::<HostTensor<f64>>(&()) {
        Ok(out) if out.loss.is_finite() && out.loss_sum.is_finite() => Ok(Outcome::Accepted),
        Ok(out) => Err(format!("a case that parses evaluates to loss {} (loss_sum {})", out.loss, out.loss_sum)),
        Err(e) if !e.to_string().is_empty() => Ok(Outcome::Refused),
        Err(e) => Err(format!("an evaluation error without a message: {e:?}")),
    }
}

#[test]
fn the_seeds_are_valid() {
    for s in seeds() {
        assert_eq!(check(s.to_string().as_bytes()), Ok(Outcome::Accepted), "{s}");
    }
}

#[test]
fn fuzz_case() {
    fuzz("case", mutated(seeds()), check);
}
