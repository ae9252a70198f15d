"""Every golden case (float64, computed by the WAPO authors' PyTorch trainer
code) through the Python API, in float64 and in float32."""

import numpy as np
import pytest
from conftest import CASES, F32, F64, assert_close, call, load

import wapo

ARRAYS = ["advantages", "weights", "grad_logprobs", "grad_logits", "logprobs", "entropy", "sum_p_sq"]


def test_the_golden_cases_are_there():
    assert len(CASES) == 80


def check(case, out, tol, dtype):
    exp = case["expected"]
    for key in ["loss", "loss_sum", "normalizer", *ARRAYS]:
        if key in exp:
            got = getattr(out, key)
            assert got is not None, f"{key}: missing from the output"
            if key in ARRAYS:
                assert got.dtype == dtype, f"{key}: dtype {got.dtype}"
            assert_close(key, got, exp[key], tol)
    assert out.clipped_tokens == exp["clipped_tokens"]
    assert out.bin_counts == exp["bin_counts"]


def test_float64(case):
    check(case, call(case, np.float64), F64, np.float64)


def test_float32(case):
    check(case, call(case, np.float32), F32, np.float32)


def test_counts_give_the_normalizer(case):
    """The rule of ranks.rs for D, on one rank, equals the core's D."""
    out = call(case)
    cfg = wapo.Config(**case["config"])
    assert wapo.normalizer(cfg, out.counts) == pytest.approx(out.normalizer, rel=0, abs=0)


TOKEN_CASES = [p for p in CASES if "logits" not in load(p)]


@pytest.mark.parametrize("path", TOKEN_CASES, ids=[p.stem for p in TOKEN_CASES])
def test_inputs_as_lists_and_bool_masks(path):
    """Plain nested lists and a bool mask give the same numbers."""
    case = load(path)
    cfg = wapo.Config(**case["config"])
    out = wapo.token_objective(
        cfg,
        group_ids=case["group_ids"],
        rewards=case["rewards"],
        mask=np.asarray(case["mask"]) == 1,
        logprobs=case["logprobs"],
        old_logprobs=case["old_logprobs"],
        sum_p_sq=case.get("sum_p_sq"),
    )
    assert_close("loss", out.loss, case["expected"]["loss"], F64)


def test_diagnostics(case):
    out = call(case)
    d = out.diagnostics
    for key in ["objective/loss", "objective/clipped_fraction", "ratio/mean", "mismatch/kl", "perplexity/pos",
                "p_train/mean", "bins/pos_peak_kept", "groups/any_correct", "grad_mass/pos/p0.5-1"]:
        assert key in d, key
    assert d["objective/loss"] == out.loss
    kept = sum(v for k, v in out.bin_counts.items() if k.endswith("_kept"))
    assert sum(d[f"bins/{b}_kept"] for b in wapo.BIN_NAMES) == kept
    if "logits" in case:
        assert "entropy/mean" in d
