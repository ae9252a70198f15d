//! One test per malformed-input class of `docs/CASES.md`: each gives a typed
//! error that names the field and the position — never a panic or a NaN loss.
//! Also the library's duty for NaN and ±inf in tensors.

use serde_json::{Value, json};
use wapo_core::advantage::Groups;
use wapo_core::case::Case;
use wapo_core::host::HostTensor;
use wapo_core::objective::{ObjectiveConfig, TokenBatch, token_objective};
use wapo_core::{Error, Objective, Shape, Tensor};

fn token_case() -> Value {
    json!({
        "format": "wapo-objective-case/1",
        "config": {"objective": "wapo", "clip_eps": 0.2, "max_seq_len": 3},
        "group_ids": [0, 0, 1, 1],
        "rewards": [1.0, 0.0, 0.0, 1.0],
        "mask": [[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]],
        "old_logprobs": [[-1.0, -0.5, -2.0], [-0.3, -0.2, -0.1], [-1.1, -1.2, -1.3], [-0.4, -0.6, -0.9]],
        "logprobs": [[-0.9, -0.6, -2.0], [-0.3, -0.25, -0.1], [-1.0, -1.3, -1.2], [-0.5, -0.5, -1.0]]
    })
}

fn logits_case() -> Value {
    let mut c = token_case();
    let o = c.as_object_mut().unwrap();
    o.remove("logprobs");
    o.insert(
        "logits".into(),
        json!([
            [[0.1, null, 2.0], [1.0, 0.5, null], [0.0, 0.0, 0.0]],
            [[0.3, 0.2, 0.1], [null, 1.0, 2.0], [1.0, 1.0, 1.0]],
            [[2.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.2, 0.1, null]],
            [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [null, null, 0.0]]
        ]),
    );
    o.insert("tokens".into(), json!([[0, 1, 2], [2, 2, 1], [0, 1, 1], [2, 0, 2]]));
    c
}

/// Parses `v` (or its raw text) and returns the error message, asserting it names `needle`.
fn expect_error(text: &str, needle: &str) -> String {
    match Case::parse(text) {
        Ok(_) => panic!("accepted a malformed case; expected an error naming `{needle}`"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "error `{msg}` does not name `{needle}`");
            msg
        }
    }
}

fn mutated(base: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut v = base;
    f(v.as_object_mut().unwrap());
    v.to_string()
}

#[test]
fn the_valid_cases_evaluate_to_a_finite_loss() {
    for base in [token_case(), logits_case()] {
        let case = Case::parse(&base.to_string()).expect("valid case");
        let out = case.evaluate::<HostTensor<f64>>(&()).expect("evaluate");
        assert!(out.loss.is_finite() && out.loss != 0.0, "loss {}", out.loss);
    }
}

#[test]
fn masked_vocabulary_nulls_work_and_get_no_gradient() {
    let case = Case::parse(&logits_case().to_string()).unwrap();
    let out = case.evaluate::<HostTensor<f64>>(&()).unwrap();
    let g = out.grad_logits.unwrap();
    // logits[0][0][1] is null: no probability mass, no gradient.
    assert_eq!(g[1], 0.0);
    assert!(g.iter().all(|x| x.is_finite()));
    assert!(out.entropy.unwrap().iter().all(|x| x.is_finite()));
}

#[test]
fn missing_field() {
    expect_error(&mutated(token_case(), |o| drop(o.remove("old_logprobs"))), "old_logprobs");
    expect_error(&mutated(token_case(), |o| drop(o.remove("rewards"))), "rewards");
    expect_error(&mutated(token_case(), |o| drop(o.remove("logprobs"))), "logprobs");
}

#[test]
fn ragged_rows() {
    let msg = expect_error(&mutated(token_case(), |o| o["logprobs"][2] = json!([-1.0, -1.0])), "logprobs[2]");
    assert!(msg.contains("expected 3"), "{msg}");
    expect_error(&mutated(logits_case(), |o| o["logits"][1][2] = json!([0.0, 1.0])), "logits[1][2]");
}

#[test]
fn n_mismatch_between_fields() {
    expect_error(&mutated(token_case(), |o| o["group_ids"] = json!([0, 0, 1])), "group_ids");
    expect_error(&mutated(token_case(), |o| o["mask"].as_array_mut().unwrap().pop().map(drop).unwrap()), "mask");
}

#[test]
fn t_mismatch_between_fields() {
    let text = mutated(token_case(), |o| {
        for row in o["old_logprobs"].as_array_mut().unwrap() {
            row.as_array_mut().unwrap().push(json!(-1.0));
        }
    });
    expect_error(&text, "old_logprobs[0]");
}

#[test]
fn unknown_objective() {
    expect_error(&mutated(token_case(), |o| o["config"]["objective"] = json!("ppo2")), "config.objective");
}

#[test]
fn missing_clip_eps() {
    let msg = expect_error(
        &mutated(token_case(), |o| drop(o["config"].as_object_mut().unwrap().remove("clip_eps"))),
        "config.clip_eps",
    );
    assert!(msg.contains("missing"), "{msg}");
}

#[test]
fn non_standard_nan_and_infinity_tokens() {
    let text = token_case().to_string().replacen("-0.9", "NaN", 1);
    let msg = expect_error(&text, "line 1 column");
    assert!(msg.contains("NaN"), "{msg}");
    expect_error(&token_case().to_string().replacen("-0.9", "-Infinity", 1), "not valid JSON");
}

#[test]
fn token_id_out_of_range() {
    expect_error(&mutated(logits_case(), |o| o["tokens"][3][1] = json!(3)), "tokens[3][1]");
    expect_error(&mutated(logits_case(), |o| o["tokens"][0][0] = json!(-1)), "tokens[0][0]");
    expect_error(&mutated(logits_case(), |o| o["tokens"][0][0] = json!(1.5)), "tokens[0][0]");
}

#[test]
fn null_logit_at_a_real_sampled_token() {
    // tokens[0][0] = 0 with mask 1: make its logit null.
    let msg = expect_error(&mutated(logits_case(), |o| o["logits"][0][0][0] = Value::Null), "logits[0][0][0]");
    assert!(msg.contains("mask = 1"), "{msg}");
    // The same null at a padding position (mask = 0) is fine.
    let ok = mutated(logits_case(), |o| o["logits"][1][2][1] = Value::Null);
    let out = Case::parse(&ok).unwrap().evaluate::<HostTensor<f64>>(&()).unwrap();
    assert!(out.loss.is_finite());
}

#[test]
fn group_id_not_an_integer() {
    expect_error(&mutated(token_case(), |o| o["group_ids"][2] = json!(1.5)), "group_ids[2]");
    expect_error(&mutated(token_case(), |o| o["group_ids"][0] = json!("a")), "group_ids[0]");
}

#[test]
fn mask_value_other_than_zero_or_one() {
    expect_error(&mutated(token_case(), |o| o["mask"][1][2] = json!(2)), "mask[1][2]");
}

#[test]
fn unknown_format() {
    expect_error(&mutated(token_case(), |o| o["format"] = json!("wapo-objective-case/9")), "format");
    expect_error(&mutated(token_case(), |o| drop(o.remove("format"))), "format");
}

#[test]
fn empty_batch() {
    let text = mutated(token_case(), |o| {
        for k in ["group_ids", "rewards", "mask", "old_logprobs", "logprobs"] {
            o[k] = json!([]);
        }
    });
    expect_error(&text, "empty batch");
}

/// Runs grpo on a 2 × 2 batch (mask [[1, 1], [0, 1]]) with these log-probs and rewards.
fn run_grpo(logprobs: [f64; 4], rewards: [f64; 2]) -> wapo_core::Result<wapo_core::objective::Output<HostTensor<f64>>> {
    let cfg = ObjectiveConfig::new(Objective::Grpo, 3);
    let groups = Groups::<HostTensor<f64>>::from_ids(&(), &[0, 0]).unwrap();
    let up = |v: &[f64], s| HostTensor::<f64>::upload(&(), v, s).unwrap();
    let batch = TokenBatch {
        groups: &groups,
        rewards: &up(&rewards, Shape::d1(2)),
        mask: &up(&[1.0, 1.0, 0.0, 1.0], Shape::d2(2, 2)),
        logprobs: &up(&logprobs, Shape::d2(2, 2)),
        old_logprobs: &up(&[-1.0; 4], Shape::d2(2, 2)),
        sum_p_sq: None,
    };
    token_objective(&cfg, &batch)
}

#[test]
fn non_finite_values_in_library_tensors_are_errors() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = run_grpo([-1.0, -1.0, -1.0, bad], [1.0, 0.0]).err().expect("non-finite log-prob must be an error");
        assert!(matches!(err, Error::NonFinite { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("logprobs") && msg.contains("[1][1]"), "{msg}");
    }
    // A non-finite log-prob at a padding position is ignored.
    let out = run_grpo([-1.0, -1.0, f64::NAN, -1.0], [1.0, 0.0]).expect("padding is ignored");
    assert!(out.loss.item().unwrap().is_finite());
    // NaN reward.
    let err = run_grpo([-1.0; 4], [f64::NAN, 0.0]).err().expect("NaN reward must be an error");
    assert!(err.to_string().contains("rewards[0]"), "{err}");
}

#[test]
fn wrong_shapes_in_library_tensors_are_errors() {
    let cfg = ObjectiveConfig::new(Objective::Wapo, 3);
    let groups = Groups::<HostTensor<f64>>::from_ids(&(), &[0, 0]).unwrap();
    let up = |v: &[f64], s| HostTensor::<f64>::upload(&(), v, s).unwrap();
    let mask = up(&[1.0; 4], Shape::d2(2, 2));
    let lp = up(&[-1.0; 6], Shape::d2(2, 3));
    let rewards = up(&[1.0, 0.0], Shape::d1(2));
    let batch = TokenBatch {
        groups: &groups,
        rewards: &rewards,
        mask: &mask,
        logprobs: &lp,
        old_logprobs: &mask,
        sum_p_sq: None,
    };
    let err = token_objective(&cfg, &batch).err().expect("shape mismatch");
    assert!(matches!(err, Error::Shape { field: "logprobs", .. }), "{err:?}");
}
