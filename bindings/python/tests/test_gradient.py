"""The returned gradients against central finite differences of the
returned loss, in float64, for every objective, at token and logits level."""

import numpy as np
import pytest

import wapo

N, T, V = 6, 4, 7
H = 1e-6


def knobs(objective):
    k = {"objective": objective, "max_seq_len": 5}
    if objective in ("dapo", "dr_dapo", "dr_dapo_seq"):
        k.update(clip_low=0.8, clip_high=1.28)
    elif objective != "raft":
        k["clip_eps"] = 0.2
    return k


def batch(seed):
    rng = np.random.default_rng(seed)
    mask = np.ones((N, T))
    mask[1, 3:] = 0
    mask[4, 2:] = 0
    return dict(
        group_ids=[5, 5, 5, 9, 9, 9],
        rewards=[1.0, 0.0, 0.5, 0.0, 1.0, 1.0],
        mask=mask,
        old_logprobs=-rng.uniform(0.2, 2.0, size=(N, T)),
    ), rng


@pytest.mark.parametrize("objective", wapo.OBJECTIVES)
def test_token_gradient(objective):
    b, rng = batch(3)
    # Ratios within about [0.75, 1.35]: some clipped, none on a kink.
    lp = b["old_logprobs"] + rng.uniform(-0.3, 0.3, size=(N, T))
    cfg = wapo.Config(**knobs(objective))
    out = wapo.token_objective(cfg, logprobs=lp, **b)
    fd = np.zeros_like(lp)
    for i in range(N):
        for t in range(T):
            up, dn = lp.copy(), lp.copy()
            up[i, t] += H
            dn[i, t] -= H
            fd[i, t] = (wapo.token_objective(cfg, logprobs=up, **b).loss
                        - wapo.token_objective(cfg, logprobs=dn, **b).loss) / (2 * H)
    np.testing.assert_allclose(out.grad_logprobs, fd, rtol=1e-5, atol=1e-8)
    assert np.abs(fd).max() > 0


@pytest.mark.parametrize("objective", ["wapo", "grpo", "gspo", "dr_dapo"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logits_gradient(objective, temperature):
    b, rng = batch(4)
    z = rng.normal(size=(N, T, V))
    z[0, 0, 6] = -np.inf  # a masked vocabulary entry
    y = rng.integers(0, V - 1, size=(N, T))
    cfg = wapo.Config(**knobs(objective), temperature=temperature)
    # Behaviour log-probs near the current ones, so that the ratios sit near 1.
    first = wapo.logits_objective(cfg, logits=z, tokens=y, **b)
    b["old_logprobs"] = np.where(b["mask"] > 0, first.logprobs + rng.uniform(-0.2, 0.2, size=(N, T)), 0.0)
    out = wapo.logits_objective(cfg, logits=z, tokens=y, **b)
    fd = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        if not np.isfinite(z[idx]):
            continue
        up, dn = z.copy(), z.copy()
        up[idx] += H
        dn[idx] -= H
        fd[idx] = (wapo.logits_objective(cfg, logits=up, tokens=y, **b).loss
                   - wapo.logits_objective(cfg, logits=dn, tokens=y, **b).loss) / (2 * H)
    np.testing.assert_allclose(out.grad_logits, fd, rtol=1e-5, atol=1e-8)
    assert out.grad_logits[0, 0, 6] == 0 and np.abs(fd).max() > 0


def test_float32_gradient_matches_float64():
    b, rng = batch(5)
    lp = b["old_logprobs"] + rng.uniform(-0.3, 0.3, size=(N, T))
    cfg = wapo.Config(**knobs("wapo"))
    o64 = wapo.token_objective(cfg, logprobs=lp, **b)
    b32 = {k: (np.asarray(v, dtype=np.float32) if k != "group_ids" else v) for k, v in b.items()}
    o32 = wapo.token_objective(cfg, logprobs=lp.astype(np.float32), **b32)
    assert o32.grad_logprobs.dtype == np.float32 and o64.grad_logprobs.dtype == np.float64
    np.testing.assert_allclose(o32.grad_logprobs, o64.grad_logprobs, rtol=1e-5, atol=1e-6)
    assert abs(o32.loss - o64.loss) <= 1e-6 * max(1.0, abs(o64.loss))
