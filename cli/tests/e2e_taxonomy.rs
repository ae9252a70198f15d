//! `wapo taxonomy` end to end on a tiny SFT checkpoint: the JSON has every
//! field, per bin, with values in range; the table prints; errors are clear.

mod common;

use std::process::Command;

use common::{Scratch, ok};
use serde_json::Value;

fn taxonomy(s: &Scratch, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wapo"));
    cmd.arg("taxonomy")
        .arg("--checkpoint")
        .arg(s.run("sft").join("checkpoints/sft.safetensors"))
        // Partial credit: an almost untrained model still gets rewards that differ within a group.
        .args(["--sort-partial-credit", "true"])
        .args(extra);
    cmd
}

#[test]
fn taxonomy_json_has_every_bin_and_field() {
    let s = Scratch::new("taxonomy");
    ok(s.train("sft", &["--rl-steps", "0"]));
    for optimizer in ["sgd", "adamw"] {
        let out = ok(taxonomy(&s, &["--batches", "4", "--json", "--optimizer", optimizer]));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout));
        });
        assert_eq!(v["optimizer"], optimizer);
        assert_eq!(v["task"], "sort");
        assert_eq!(v["objective"], "dr_grpo", "the default objective updates every bin");
        assert_eq!(v["batches"], 4);
        assert!(v["lr"].as_f64().unwrap() > 0.0 && v["wall_s"].as_f64().unwrap() >= 0.0);
        let bins = v["bins"].as_object().unwrap();
        let names: Vec<&str> = bins.keys().map(String::as_str).collect();
        for name in ["pos_peak", "pos_valley", "neg_peak", "neg_valley"] {
            assert!(names.contains(&name), "{optimizer}: no bin {name} in {names:?}");
            let b = &bins[name];
            let batches = b["batches"].as_u64().unwrap();
            assert!(batches <= 4);
            for q in ["entropy", "logprob"] {
                let a = &b[q];
                let sign = a["predicted_sign"].as_f64().unwrap();
                assert!([-1.0, 0.0, 1.0].contains(&sign), "{name}.{q}: sign {sign}");
                let agree = a["sign_agreement"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&agree), "{name}.{q}: agreement {agree}");
                match &a["correlation"] {
                    Value::Null => {}
                    c => assert!(c.as_f64().unwrap().abs() <= 1.0 + 1e-12, "{name}.{q}: {c}"),
                }
                assert!(a["predicted_mean"].is_number() && a["measured_mean"].is_number());
            }
            if batches > 0 && name.starts_with("pos") {
                assert_eq!(b["logprob"]["predicted_sign"], 1.0, "{name}: §7 raises a positive token's log-prob");
            }
            if batches > 0 && name.starts_with("neg") {
                assert_eq!(b["logprob"]["predicted_sign"], -1.0, "{name}: §7 lowers a negative token's log-prob");
            }
        }
        assert!(bins.values().any(|b| b["batches"].as_u64().unwrap() > 0), "no bin was ever updated");
    }
    let table = String::from_utf8(ok(taxonomy(&s, &["--batches", "2"])).stdout).unwrap();
    for word in ["pos_peak", "neg_valley", "ΔH agree", "Δℓ corr"] {
        assert!(table.contains(word), "table lacks {word}:\n{table}");
    }
}

#[test]
fn taxonomy_refuses_a_missing_checkpoint_and_a_bad_batch_count() {
    let s = Scratch::new("taxonomy-errors");
    let out = taxonomy(&s, &["--batches", "2"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sft.safetensors"));
    ok(s.train("sft", &["--rl-steps", "0"]));
    let out = taxonomy(&s, &["--batches", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batches"));
}
