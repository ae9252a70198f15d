"""wapo.torch: the autograd function in a PyTorch loop. Runs only where torch
is importable (CI does not install it); pytest -rs prints why it skipped."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the wapo.torch tests did not run")

import wapo  # noqa: E402
import wapo.torch as wt  # noqa: E402

N, T, V = 6, 5, 11


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, T, V, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, V, (N, T), generator=g)
    mask = torch.ones(N, T, dtype=torch.bool)
    mask[2, 3:] = False
    old = logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0] + 0.2 * torch.rand(N, T, generator=g) - 0.1
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    group_ids = torch.tensor([0, 0, 0, 1, 1, 1])
    return logits, tokens, mask, old.where(mask, torch.zeros(())), rewards, group_ids


CFG = dict(objective="wapo", clip_eps=0.2, max_seq_len=8)


def test_loss_and_gradient_match_the_numpy_api():
    logits, tokens, mask, old, rewards, gids = data()
    logprobs = logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0].detach().requires_grad_()
    cfg = wapo.Config(**CFG)
    loss, out = wt.objective_with_output(cfg, logprobs, old, rewards, gids, mask)
    loss.backward()
    ref = wapo.token_objective(cfg, group_ids=gids.numpy(), rewards=rewards.numpy(), mask=mask.numpy(),
                               logprobs=logprobs.detach().numpy(), old_logprobs=old.numpy())
    assert loss.item() == ref.loss and loss.dtype == torch.float64 and loss.dim() == 0
    np.testing.assert_array_equal(logprobs.grad.numpy(), ref.grad_logprobs)
    assert "objective/clipped_fraction" in out.diagnostics


def test_chain_rule_through_log_softmax_equals_the_logits_gradient():
    """autograd through torch's log_softmax + gather, fed ∂loss/∂ℓ, gives the
    logits-level gradient the objective computes itself."""
    logits, tokens, mask, old, rewards, gids = data(1)
    z = logits.clone().requires_grad_()
    lp = z.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    cfg = wapo.Config(**CFG)
    wt.objective(cfg, lp, old, rewards, gids, mask).backward()
    z2 = logits.clone().requires_grad_()
    loss2, _ = wt.logits_objective(cfg, z2, tokens, old, rewards, gids, mask)
    loss2.backward()
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-10, atol=1e-12)


def test_float32_and_device_come_back():
    logits, tokens, mask, old, rewards, gids = data(2)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    lp = logits.float().log_softmax(-1).gather(-1, tokens[..., None])[..., 0].to(dev).detach().requires_grad_()
    loss = wt.objective(wapo.Config(**CFG), lp, old.float().to(dev), rewards.to(dev), gids.to(dev), mask.to(dev))
    (2.0 * loss).backward()
    assert loss.dtype == torch.float32 and loss.device == lp.device
    assert lp.grad.dtype == torch.float32 and lp.grad.device == lp.device
    assert torch.count_nonzero(lp.grad) > 0


def test_a_training_step_raises_the_winners_logprobs():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, V, dtype=torch.float64)
    x = torch.randn(N, T, 4, dtype=torch.float64)
    _, tokens, mask, _, rewards, gids = data(3)
    with torch.no_grad():
        old = model(x).log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    cfg = wapo.Config(**CFG)
    for _ in range(3):
        lp = model(x).log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
        opt.zero_grad()
        wt.objective(cfg, lp, old, rewards, gids, mask).backward()
        opt.step()
    with torch.no_grad():
        new = model(x).log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    winners = rewards > 0
    gain = ((new - old) * mask)[winners].sum()
    assert gain > 0


def test_all_reduce_counts_on_one_rank(tmp_path):
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        logits, tokens, mask, old, rewards, gids = data(4)
        lp = logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
        cfg = wapo.Config(**CFG)
        counts = wt.global_counts(cfg, lp, old, rewards, gids, mask)
        out = wapo.token_objective(cfg, group_ids=gids.numpy(), rewards=rewards.numpy(), mask=mask.numpy(),
                                   logprobs=lp.detach().numpy(), old_logprobs=old.numpy())
        assert counts == out.counts
        loss = wt.objective(cfg, lp, old, rewards, gids, mask, global_counts=counts)
        assert loss.item() == out.loss
    finally:
        dist.destroy_process_group()


def test_the_grpo_loop_example_learns():
    import pathlib
    import runpy

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "grpo_loop.py"
    example = runpy.run_path(str(path))
    history = example["main"](steps=12, seed=0)
    assert sum(history[-3:]) / 3 > sum(history[:3]) / 3 + 0.2, history
