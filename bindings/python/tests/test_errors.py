"""Malformed input raises ValueError naming the argument (and the position),
never a crash of the interpreter (docs/CASES.md, "A malformed case")."""

import math

import numpy as np
import pytest

import wapo

N, T, V = 4, 3, 5


def cfg(**kw):
    return wapo.Config(**{"objective": "wapo", "clip_eps": 0.2, "max_seq_len": T, **kw})


def token_batch(**over):
    rng = np.random.default_rng(0)
    b = dict(
        group_ids=[0, 0, 1, 1],
        rewards=[1.0, 0.0, 0.0, 1.0],
        mask=np.ones((N, T)),
        logprobs=-rng.random((N, T)),
        old_logprobs=-rng.random((N, T)),
    )
    b.update(over)
    return b


def logits_batch(**over):
    rng = np.random.default_rng(1)
    b = token_batch()
    del b["logprobs"]
    b.update(logits=rng.normal(size=(N, T, V)), tokens=rng.integers(0, V, size=(N, T)))
    b.update(over)
    return b


def raises(field, f, *args, **kw):
    with pytest.raises(ValueError) as e:
        f(*args, **kw)
    assert field in str(e.value), f"{field!r} not in {str(e.value)!r}"
    return str(e.value)


@pytest.mark.parametrize(
    "knobs, field",
    [
        (dict(objective="wapo", clip_eps=0.2, max_seq_len=4, foo=1), "config.foo"),
        (dict(objective="ppo", clip_eps=0.2), "config.objective"),
        (dict(objective="grpo"), "config.clip_eps"),
        (dict(objective="wapo", clip_eps=0.2), "config.max_seq_len"),
        (dict(objective="wapo", clip_eps=0.2, max_seq_len=0), "config.max_seq_len"),
        (dict(objective="wapo", clip_eps=0.2, max_seq_len=2.5), "config.max_seq_len"),
        (dict(objective="grpo", clip_eps="big"), "config.clip_eps"),
        (dict(objective="grpo", clip_eps=math.nan), "config.clip_eps"),
        (dict(objective="grpo", clip_eps=-0.1), "config.clip_eps"),
        (dict(objective="dapo", clip_low=1.5, clip_high=1.2), "config.clip_low"),
        (dict(objective="grpo", clip_eps=0.2, temperature=0.0), "config.temperature"),
        (dict(objective="grpo", clip_eps=0.2, aggregation="token"), "config.aggregation"),
        (dict(objective="grpo", clip_eps=0.2, include_bins=["pos_peak", "tall"]), "config.include_bins[1]"),
        (dict(objective="grpo", clip_eps=0.2, importance_sampling=1), "config.importance_sampling"),
        (dict(objective="grpo", clip_eps=0.2, exclude_bins=[object()]), "config.exclude_bins"),
        (dict(), "config.objective"),
    ],
)
def test_bad_knobs(knobs, field):
    raises(field, wapo.Config, **knobs)


def test_good_knobs_read_back():
    c = wapo.Config(objective="dr_grpo", clip_eps=0.28, include_bins=["pos"], aggregation="seq")
    assert (c.objective, c.clip_eps, c.aggregation, c.include_bins) == ("dr_grpo", 0.28, "seq", ["pos_peak", "pos_valley"])
    assert c.max_seq_len is None and c.temperature == 1.0 and not c.winners_only
    assert wapo.Config(objective="raft").aggregation == "seq"
    assert wapo.Config(**c.to_dict()).to_dict() == c.to_dict()
    import pickle

    assert pickle.loads(pickle.dumps(c)).to_dict() == c.to_dict()
    assert "dr_grpo" in repr(c)


@pytest.mark.parametrize(
    "over, field",
    [
        (dict(mask=np.array([[1, 1, 2]] * N)), "mask[0][2]"),
        (dict(logprobs=np.where(np.eye(N, T) > 0, np.nan, -0.5)), "logprobs[0][0]"),
        (dict(old_logprobs=np.full((N, T), np.inf)), "old_logprobs[0][0]"),
        (dict(rewards=[1.0, math.nan, 0.0, 0.0]), "rewards[1]"),
        (dict(rewards=np.ones((N, 1))), "rewards"),
        (dict(rewards=["a", "b", "c", "d"]), "rewards"),
        (dict(old_logprobs=np.zeros((N, T + 1))), "old_logprobs"),
        (dict(logprobs=np.zeros((N - 1, T))), "logprobs"),
        (dict(mask=np.ones((N + 1, T))), "mask"),
        (dict(mask=[[1, 1, 1], [1, 1]] * 2), "mask"),
        (dict(group_ids=[0, 0.5, 1, 1]), "group_ids[1]"),
        (dict(group_ids=[0, 0, 1]), "group_ids"),
        (dict(group_ids=["a", "a", "b", "b"]), "group_ids"),
        (dict(sum_p_sq=np.zeros((N, 2))), "sum_p_sq"),
    ],
)
def test_bad_token_inputs(over, field):
    raises(field, wapo.token_objective, cfg(), **token_batch(**over))


def test_nan_at_padding_is_fine():
    """Only real (mask = 1) tokens must be finite."""
    b = token_batch()
    b["mask"][2, 2] = 0
    b["logprobs"][2, 2] = np.nan
    assert math.isfinite(wapo.token_objective(cfg(), **b).loss)


def test_empty_batch():
    b = token_batch(group_ids=[], rewards=[], mask=np.zeros((0, T)), logprobs=np.zeros((0, T)),
                    old_logprobs=np.zeros((0, T)))
    assert "empty" in raises("", wapo.token_objective, cfg(), **b)
    raises("mask", wapo.token_objective, cfg(), **token_batch(mask=np.zeros((N, 0)), logprobs=np.zeros((N, 0)),
                                                            old_logprobs=np.zeros((N, 0))))


@pytest.mark.parametrize(
    "over, field",
    [
        (dict(tokens=np.full((N, T), V)), "tokens[0][0]"),
        (dict(tokens=np.full((N, T), -1)), "tokens[0][0]"),
        (dict(tokens=np.full((N, T), 0.5)), "tokens[0][0]"),
        (dict(tokens=np.zeros((N, T + 1), dtype=int)), "tokens"),
        (dict(logits=np.zeros((N, T))), "logits"),
        (dict(logits=np.zeros((N, T, 0))), "logits"),
        (dict(logits=np.full((N, T, V), np.nan)), "logits"),
    ],
)
def test_bad_logits_inputs(over, field):
    raises(field, wapo.logits_objective, cfg(), **logits_batch(**over))


def test_masked_vocabulary_and_the_sampled_token():
    b = logits_batch(tokens=np.zeros((N, T), dtype=int))
    b["logits"][:, :, V - 1] = -np.inf  # a masked vocabulary entry: fine
    out = wapo.logits_objective(cfg(), **b)
    assert math.isfinite(out.loss) and np.all(out.grad_logits[:, :, V - 1] == 0)
    b["logits"][1, 2, 0] = -np.inf  # but not the sampled token of a real position
    raises("logits[1][2][0]", wapo.logits_objective, cfg(), **b)


def test_bad_config_object_and_counts():
    raises("cfg", wapo.token_objective, {"objective": "wapo"}, **token_batch())
    out = wapo.token_objective(cfg(), **token_batch())
    raises("global_counts.bogus", wapo.token_objective, cfg(), **token_batch(), global_counts={**out.counts, "bogus": 1})
    missing = dict(out.counts)
    del missing["kept_tokens"]
    raises("global_counts.kept_tokens", wapo.token_objective, cfg(), **token_batch(), global_counts=missing)
    small = {**out.counts, "sequences": 1}
    raises("global_counts.sequences", wapo.token_objective, cfg(), **token_batch(), global_counts=small)
    raises("global_counts.kept_tokens", wapo.token_objective, cfg(), **token_batch(),
           global_counts={**out.counts, "kept_tokens": -3})


def test_layouts_and_dtypes():
    """Strided views, float16 and integer inputs are converted; the result
    equals the one from C-contiguous float64 arrays."""
    b = token_batch()
    ref = wapo.token_objective(cfg(), **b)
    wide = np.zeros((N, 2 * T))
    wide[:, ::2] = b["logprobs"]
    strided = dict(b, logprobs=wide[:, ::2], old_logprobs=np.asfortranarray(b["old_logprobs"]))
    assert not strided["logprobs"].flags.c_contiguous
    out = wapo.token_objective(cfg(), **strided)
    assert out.loss == ref.loss
    np.testing.assert_array_equal(out.grad_logprobs, ref.grad_logprobs)
    half = wapo.token_objective(cfg(), **dict(b, logprobs=b["logprobs"].astype(np.float16),
                                             rewards=np.array([1, 0, 0, 1]), group_ids=np.array([0, 0, 1, 1], np.uint8)))
    assert half.grad_logprobs.dtype == np.float64 and abs(half.loss - ref.loss) < 1e-2
