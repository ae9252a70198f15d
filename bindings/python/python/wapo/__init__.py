"""WAPO and the GRPO family of RL-from-verifiable-rewards objectives.

The loss, its gradient, the token taxonomy and the diagnostics of
wapo-rs (``docs/OBJECTIVE.md``), over NumPy arrays. Argument and result
names are those of a case file (``docs/CASES.md``), so a case maps onto a
call one to one::

    cfg = wapo.Config(**case["config"])
    out = wapo.token_objective(cfg, group_ids=..., rewards=..., mask=...,
                               logprobs=..., old_logprobs=...)
    out.loss, out.grad_logprobs, out.diagnostics["objective/clipped_fraction"]

Inputs may be float32 or float64 (the precision of ``logprobs`` or
``logits`` is the precision of the computation and of the returned arrays);
a C-contiguous array of that dtype is used without conversion, anything
else is converted first. ``mask`` may be bool or numeric, ``group_ids`` and
``tokens`` integers. Every malformed input raises ``ValueError`` naming the
argument and, where there is one, the position. The GIL is released while
computing.

For PyTorch training loops see :mod:`wapo.torch`; for several data-parallel
ranks, :func:`local_counts` and the ``global_counts`` argument.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import numpy as np

from . import _wapo
from ._wapo import BIN_NAMES, COUNT_NAMES, OBJECTIVES, Config, Output

__all__ = [
    "BIN_NAMES",
    "COUNT_NAMES",
    "OBJECTIVES",
    "Config",
    "Output",
    "local_counts",
    "logits_objective",
    "normalizer",
    "reduce_counts",
    "token_objective",
]

__version__ = "0.1.0"


def _precision(x: Any) -> type:
    """float32 when the main input is float32, else float64."""
    return np.float32 if getattr(x, "dtype", None) == np.float32 else np.float64


def _floats(name: str, x: Any, dtype: type) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype`` (no copy when it already is one)."""
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise ValueError(f"`{name}`: not a rectangular array of numbers ({e})") from None
    if a.dtype.kind not in "biuf":
        raise ValueError(f"`{name}`: must hold numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _integers(name: str, x: Any) -> np.ndarray:
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"`{name}`: not a rectangular array of integers ({e})") from None
    if a.dtype.kind in "iu":
        if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"`{name}`: ids must fit in int64")
        return np.ascontiguousarray(a, dtype=np.int64)
    if a.dtype.kind == "b":
        return np.ascontiguousarray(a, dtype=np.int64)
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (np.floor(a) != a) | (np.abs(a) >= 2.0**62)
        if bad.any():
            pos = "".join(f"[{i}]" for i in np.argwhere(bad)[0])
            raise ValueError(f"`{name}{pos}`: must be an integer, got {a[bad][0]}")
        return np.ascontiguousarray(a, dtype=np.int64)
    raise ValueError(f"`{name}`: must hold integers, got dtype {a.dtype}")


def token_objective(
    cfg: Config,
    *,
    group_ids: Any,
    rewards: Any,
    mask: Any,
    logprobs: Any,
    old_logprobs: Any,
    sum_p_sq: Any = None,
    global_counts: Optional[Mapping[str, int]] = None,
) -> Output:
    """The objective from the log-probs of the sampled tokens.

    Shapes: ``group_ids``, ``rewards`` (N); ``mask``, ``logprobs``,
    ``old_logprobs``, ``sum_p_sq`` (N, T). ``sum_p_sq`` (Σ_v p_v² per
    position) is needed only when the config filters token bins; without
    it every token is a peak. ``global_counts`` (the :func:`reduce_counts`
    of every rank's :func:`local_counts`) makes the normalizer the one of
    the whole data-parallel batch. Returns an :class:`Output`.
    """
    if not isinstance(cfg, Config):
        raise ValueError("`cfg`: must be a wapo.Config")
    dt = _precision(logprobs)
    return _wapo.token_objective(
        cfg,
        _integers("group_ids", group_ids),
        _floats("rewards", rewards, dt),
        _floats("mask", mask, dt),
        _floats("logprobs", logprobs, dt),
        _floats("old_logprobs", old_logprobs, dt),
        None if sum_p_sq is None else _floats("sum_p_sq", sum_p_sq, dt),
        None if global_counts is None else dict(global_counts),
    )


def logits_objective(
    cfg: Config,
    *,
    group_ids: Any,
    rewards: Any,
    mask: Any,
    logits: Any,
    tokens: Any,
    old_logprobs: Any,
    global_counts: Optional[Mapping[str, int]] = None,
) -> Output:
    """The objective from the logits (N, T, V) and sampled tokens (N, T).

    ``-inf`` in ``logits`` marks a masked vocabulary entry (not allowed at
    the sampled token of a real position). The log-probs, entropy and Σp²
    are computed at temperature ``cfg.temperature``; ``Output.grad_logits``
    is ∂loss/∂logits.
    """
    if not isinstance(cfg, Config):
        raise ValueError("`cfg`: must be a wapo.Config")
    dt = _precision(logits)
    return _wapo.logits_objective(
        cfg,
        _integers("group_ids", group_ids),
        _floats("rewards", rewards, dt),
        _floats("mask", mask, dt),
        _floats("logits", logits, dt),
        _integers("tokens", tokens),
        _floats("old_logprobs", old_logprobs, dt),
        None if global_counts is None else dict(global_counts),
    )


def local_counts(cfg: Config, **batch: Any) -> dict:
    """This rank's normalizer counts: the arguments of :func:`token_objective`
    (or, with ``logits`` and ``tokens``, of :func:`logits_objective`).

    Sum them over the ranks (``max_tokens``: take the max), e.g. with
    :func:`reduce_counts` or ``wapo.torch.all_reduce_counts``, and pass the
    result as ``global_counts``.
    """
    batch.pop("global_counts", None)
    if "logits" in batch:
        return logits_objective(cfg, **batch).counts
    return token_objective(cfg, **batch).counts


def reduce_counts(counts: Iterable[Mapping[str, int]]) -> dict:
    """The counts of several ranks together: sums, and the max of ``max_tokens``."""
    return _wapo.reduce_counts([dict(c) for c in counts])


def normalizer(cfg: Config, counts: Mapping[str, int]) -> float:
    """The normalizer D that ``counts`` give under ``cfg`` (``docs/OBJECTIVE.md`` §5)."""
    return _wapo.normalizer(cfg, dict(counts))
