//! Shared helpers of the test suite: the golden cases and their comparison,
//! random cases, a naive reference loop, and the backend-generic suites
//! ([`suite`]: objective equivalence and policy behaviour, one line per
//! backend).

pub mod llama_ref;
pub mod naive;
pub mod random;
pub mod suite;

use std::path::PathBuf;

use wapo_core::Tensor;
use wapo_core::case::{Case, FieldDiff, Tolerance, compare};

/// The golden cases shipped in `tests/data/golden`, with their file names.
pub fn golden_cases() -> Vec<(String, Case)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/golden"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 80, "expected the 80 golden cases in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read case");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let case = Case::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect()
}

/// Evaluates `case` on backend `T` and returns the fields that fail `tol`
/// against the case's `expected` (empty when everything matches).
pub fn check_case<T: Tensor>(dev: &T::Device, case: &Case, tol: Tolerance) -> Vec<FieldDiff> {
    let out = match case.evaluate::<T>(dev) {
        Ok(o) => o,
        Err(e) => {
            return vec![FieldDiff {
                field: "<evaluate>".into(),
                max_abs: f64::NAN,
                worst: None,
                ok: false,
                note: Some(e.to_string()),
            }];
        }
    };
    let expected = case.expected.as_ref().expect("golden case has `expected`");
    compare(&out.to_json(), expected, tol).into_iter().filter(|d| !d.ok).collect()
}

/// Runs every golden case and panics with a per-case report of failing fields.
pub fn assert_golden<T: Tensor>(dev: &T::Device, tol: Tolerance) {
    let cases = golden_cases();
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let bad = check_case::<T>(dev, case, tol);
        for d in bad {
            failures.push(format!(
                "{name}: {} max |Δ| = {:e} at {:?} {}",
                d.field,
                d.max_abs,
                d.worst,
                d.note.unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{} failing fields:\n{}", failures.len(), failures.join("\n"));
    println!("{} golden cases match", cases.len());
}
