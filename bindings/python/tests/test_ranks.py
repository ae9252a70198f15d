"""Data-parallel ranks: a batch split by whole groups over k ranks, each
rank dividing by the normalizer of the reduced counts, gives per-rank
losses that sum to the one-rank loss and gradients that are the one-rank
gradient's rows."""

import numpy as np
import pytest
from conftest import CASES, load, nulls

import wapo

PER_SEQ = ["rewards", "group_ids"]
PER_TOKEN = ["mask", "old_logprobs", "logprobs", "sum_p_sq", "logits", "tokens"]


def split(case, k):
    """k sub-cases holding whole groups (round-robin over the groups)."""
    groups = list(dict.fromkeys(case["group_ids"]))
    ranks = []
    for r in range(k):
        rows = [i for i, g in enumerate(case["group_ids"]) if groups.index(g) % k == r]
        sub = dict(case, _rows=rows)
        for key in PER_SEQ + PER_TOKEN:
            if case.get(key) is not None:
                sub[key] = [case[key][i] for i in rows]
        ranks.append(sub)
    return ranks


def run(case, **extra):
    cfg = wapo.Config(**case["config"])
    a = lambda key: np.asarray(nulls(case[key]), dtype=np.float64)  # noqa: E731
    common = dict(group_ids=case["group_ids"], rewards=a("rewards"), mask=a("mask"), old_logprobs=a("old_logprobs"))
    if "logits" in case:
        return wapo.logits_objective(cfg, logits=a("logits"), tokens=case["tokens"], **common, **extra)
    sq = a("sum_p_sq") if case.get("sum_p_sq") is not None else None
    return wapo.token_objective(cfg, logprobs=a("logprobs"), sum_p_sq=sq, **common, **extra)


def grad(out):
    return out.grad_logits if out.grad_logits is not None else out.grad_logprobs


SPLITS = [(p, k) for p in CASES for k in (2, 3) if len(set(load(p)["group_ids"])) >= k]


def test_there_are_splittable_cases():
    assert len(SPLITS) >= 60


@pytest.mark.parametrize("path, k", SPLITS, ids=[f"{p.stem}-k{k}" for p, k in SPLITS])
def test_k_ranks_sum_to_one_rank(path, k):
    case = load(path)
    whole = run(case)
    ranks = split(case, k)
    # What each rank computes before the all-reduce ...
    local = [wapo.local_counts(wapo.Config(**r["config"]), **batch_args(r)) for r in ranks]
    total = wapo.reduce_counts(local)
    assert total == whole.counts
    # ... and after it.
    outs = [run(r, global_counts=total) for r in ranks]
    tol = 1e-12 * max(1.0, abs(whole.loss))
    assert abs(sum(o.loss for o in outs) - whole.loss) <= tol
    for r, o in zip(ranks, outs):
        assert o.normalizer == whole.normalizer
        np.testing.assert_allclose(grad(o), grad(whole)[r["_rows"]], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(o.weights, whole.weights[r["_rows"]], rtol=1e-12, atol=0)


def batch_args(case):
    a = lambda key: np.asarray(nulls(case[key]), dtype=np.float64)  # noqa: E731
    b = dict(group_ids=case["group_ids"], rewards=a("rewards"), mask=a("mask"), old_logprobs=a("old_logprobs"))
    if "logits" in case:
        b.update(logits=a("logits"), tokens=case["tokens"])
    else:
        b.update(logprobs=a("logprobs"), sum_p_sq=a("sum_p_sq") if case.get("sum_p_sq") is not None else None)
    return b


def test_local_normalizers_would_be_wrong():
    """Without the reduced counts, ranks do not add up (why the counts exist).

    Worked by hand: grpo at seq level, two groups of two one-token sequences,
    one per rank. One rank: D = 4 sequences; each rank alone: D = 2, so the
    summed loss would be twice the one-rank loss.
    """
    cfg = wapo.Config(objective="grpo", clip_eps=0.2)
    full = dict(group_ids=[0, 0, 1, 1], rewards=[1.0, 0.0, 1.0, 0.0], mask=np.ones((4, 1)),
                logprobs=np.full((4, 1), -1.0), old_logprobs=np.full((4, 1), -1.0))
    halves = [{k: np.asarray(v)[s] for k, v in full.items()} for s in (slice(0, 2), slice(2, 4))]
    one = wapo.token_objective(cfg, **full)
    assert one.normalizer == 4
    # ρ = 1, A = ±1 (normalized), so L = ∓1 per token: the loss sums to 0.
    # The gradient at the winners is −A·ρ/(n_i·D) = −1/4.
    assert one.grad_logprobs[0, 0] == pytest.approx(-0.25)
    alone = [wapo.token_objective(cfg, **h) for h in halves]
    assert [o.normalizer for o in alone] == [2, 2]
    assert alone[0].grad_logprobs[0, 0] == pytest.approx(-0.5)
    total = wapo.reduce_counts(o.counts for o in alone)
    assert total == {"sequences": 4, "kept_sequences": 4, "contributing_groups": 2, "kept_sequence_tokens": 4,
                     "kept_tokens": 4, "max_tokens": 1}
    shared = [wapo.token_objective(cfg, **h, global_counts=total) for h in halves]
    assert [o.normalizer for o in shared] == [4, 4]
    assert shared[0].grad_logprobs[0, 0] == pytest.approx(-0.25)


def test_reduce_takes_the_max_of_max_tokens():
    a = dict.fromkeys(wapo.COUNT_NAMES, 1) | {"max_tokens": 7}
    b = dict.fromkeys(wapo.COUNT_NAMES, 2) | {"max_tokens": 3}
    assert wapo.reduce_counts([a, b]) == dict.fromkeys(wapo.COUNT_NAMES, 3) | {"max_tokens": 7}
