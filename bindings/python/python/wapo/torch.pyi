from typing import Any, Mapping, Optional, Tuple

import torch

from . import Config, Output

def objective(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = ...,
    global_counts: Optional[Mapping[str, int]] = ...,
) -> torch.Tensor: ...
def objective_with_output(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = ...,
    global_counts: Optional[Mapping[str, int]] = ...,
) -> Tuple[torch.Tensor, Output]: ...
def logits_objective(
    cfg: Config,
    logits: torch.Tensor,
    tokens: Any,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    global_counts: Optional[Mapping[str, int]] = ...,
) -> Tuple[torch.Tensor, Output]: ...
def sum_p_sq(logits: torch.Tensor, temperature: float = ...) -> torch.Tensor: ...
def all_reduce_counts(counts: Mapping[str, int], group: Any = ...) -> dict: ...
def global_counts(
    cfg: Config,
    logprobs: torch.Tensor,
    old_logprobs: Any,
    rewards: Any,
    group_ids: Any,
    mask: Any,
    *,
    sum_p_sq: Any = ...,
    group: Any = ...,
) -> dict: ...
