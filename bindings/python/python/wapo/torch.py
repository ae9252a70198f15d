"""PyTorch drop-in: the WAPO / GRPO-family loss as an autograd function.

Import it explicitly (``import wapo.torch``); ``import wapo`` alone never
needs torch. The (N, T) tensors go to the host, the objective is evaluated
there in float64, and the gradient comes back to the input's device and
dtype, so a trainer keeps its model, its optimizer and its distributed
engine and only swaps the loss::

    import wapo, wapo.torch

    cfg = wapo.Config(objective="wapo", clip_eps=0.2, max_seq_len=1024)
    loss = wapo.torch.objective(cfg, logprobs, old_logprobs, rewards, group_ids, mask)
    loss.backward()

``logprobs`` (N, T) carries the graph (for instance
``logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]``); the other
arguments are constants: ``old_logprobs`` (N, T), ``rewards`` (N),
``group_ids`` (N) integers, ``mask`` (N, T) bool or 0/1, all tensors on any
device or array-likes.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

from . import COUNT_NAMES, Config, Output, local_counts, logits_objective as _logits_objective
from . import token_objective as _token_objective

__all__ = [
    "all_reduce_counts",
    "global_counts",
    "logits_objective",
    "objective",
    "objective_with_output",
    "sum_p_sq",
]


def _floats(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).contiguous().numpy()
    return np.asarray(x, dtype=np.float64)


def _ints(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return x.numpy() if not x.is_floating_point() else x.to(torch.float64).numpy()
    return np.asarray(x)


def _mask(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return x.numpy() if x.dtype == torch.bool else x.to(torch.float64).numpy()
    return np.asarray(x)


def _back(grad: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A host gradient on the device and in the dtype of ``like``."""
    return torch.from_numpy(np.ascontiguousarray(grad)).to(device=like.device, dtype=like.dtype)


class _TokenObjective(torch.autograd.Function):
    """loss(ℓ) with ∂loss/∂ℓ from the objective; every other input is a constant."""

    @staticmethod
    def forward(ctx, logprobs, cfg, old_logprobs, rewards, group_ids, mask, sum_p_sq, counts, sink):
        out = _token_objective(
            cfg,
            group_ids=_ints(group_ids),
            rewards=_floats(rewards),
            mask=_mask(mask),
            logprobs=_floats(logprobs),
            old_logprobs=_floats(old_logprobs),
            sum_p_sq=None if sum_p_sq is None else _floats(sum_p_sq),
            global_counts=counts,
        )
        sink.append(out)
        ctx.save_for_backward(_back(out.grad_logprobs, logprobs))
        return logprobs.new_tensor(out.loss)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad_loss * grad, None, None, None, None, None, None, None, None


class _LogitsObjective(torch.autograd.Function):
    """loss(z) with ∂loss/∂z from the objective at logits level."""

    @staticmethod
    def forward(ctx, logits, cfg, tokens, old_logprobs, rewards, group_ids, mask, counts, sink):
        out = _logits_objective(
            cfg,
            group_ids=_ints(group_ids),
            rewards=_floats(rewards),
            mask=_mask(mask),
            logits=_floats(logits),
            tokens=_ints(tokens),
            old_logprobs=_floats(old_logprobs),
            global_counts=counts,
        )
        sink.append(out)
        ctx.save_for_backward(_back(out.grad_logits, logits))
        return logits.new_tensor(out.loss)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad_loss * grad, None, None, None, None, None, None, None, None


def objective_with_output(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = None,
    global_counts: Optional[Mapping[str, int]] = None,
) -> Tuple[torch.Tensor, Output]:
    """Like :func:`objective`, and the :class:`wapo.Output` (advantages,
    weights, bin counts, ``diagnostics``) for logging."""
    if not isinstance(logprobs, torch.Tensor):
        raise ValueError("`logprobs`: must be a torch.Tensor (the one that carries the graph)")
    sink: List[Output] = []
    counts = None if global_counts is None else dict(global_counts)
    loss = _TokenObjective.apply(logprobs, cfg, old_logprobs, rewards, group_ids, mask, sum_p_sq, counts, sink)
    return loss, sink[0]


def objective(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = None,
    global_counts: Optional[Mapping[str, int]] = None,
) -> torch.Tensor:
    """The objective's loss as a 0-dim tensor on ``logprobs``' device and in
    its dtype; ``backward`` gives ``logprobs`` the objective's ∂loss/∂ℓ.

    ``sum_p_sq`` (N, T), Σ_v p_v², is needed when the config filters token
    bins (see :func:`sum_p_sq`). ``global_counts`` (see
    :func:`global_counts`) makes each data-parallel rank divide by the
    normalizer of the whole batch, so that the ranks' losses add up to the
    one-rank loss.
    """
    return objective_with_output(
        cfg, logprobs, old_logprobs, rewards, group_ids, mask, sum_p_sq=sum_p_sq, global_counts=global_counts
    )[0]


def logits_objective(
    cfg: Config,
    logits: torch.Tensor,
    tokens: Any,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    global_counts: Optional[Mapping[str, int]] = None,
) -> Tuple[torch.Tensor, Output]:
    """The objective from logits (N, T, V) on the host: returns (loss, output).

    This moves the whole (N, T, V) tensor to the host and back; for a large
    vocabulary prefer :func:`objective` on log-probs computed on the device.
    """
    if not isinstance(logits, torch.Tensor):
        raise ValueError("`logits`: must be a torch.Tensor (the one that carries the graph)")
    sink: List[Output] = []
    counts = None if global_counts is None else dict(global_counts)
    loss = _LogitsObjective.apply(logits, cfg, tokens, old_logprobs, rewards, group_ids, mask, counts, sink)
    return loss, sink[0]


def sum_p_sq(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(N, T) Σ_v p_v² of each position, detached: the peak/valley threshold
    that the token-bin filters need at token level."""
    with torch.no_grad():
        return (logits.float() / temperature).softmax(-1).square().sum(-1)


def all_reduce_counts(counts: Mapping[str, int], group: Any = None) -> dict:
    """The counts of every rank of ``group``: sums, and the max of
    ``max_tokens`` (two all-reduces of a few integers)."""
    if not (dist.is_available() and dist.is_initialized()):
        return dict(counts)
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    sums = [n for n in COUNT_NAMES if n != "max_tokens"]
    s = torch.tensor([int(counts[n]) for n in sums], dtype=torch.int64, device=device)
    m = torch.tensor([int(counts["max_tokens"])], dtype=torch.int64, device=device)
    dist.all_reduce(s, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)
    out = {n: int(v) for n, v in zip(sums, s.tolist())}
    out["max_tokens"] = int(m.item())
    return out


def global_counts(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = None,
    group: Any = None,
) -> dict:
    """This rank's counts, all-reduced over ``group``: pass them as
    ``global_counts``. Each rank must hold whole groups (every completion of
    a prompt on the same rank)."""
    local = local_counts(
        cfg,
        group_ids=_ints(group_ids),
        rewards=_floats(rewards),
        mask=_mask(mask),
        logprobs=_floats(logprobs),
        old_logprobs=_floats(old_logprobs),
        sum_p_sq=None if sum_p_sq is None else _floats(sum_p_sq),
    )
    return all_reduce_counts(local, group)
