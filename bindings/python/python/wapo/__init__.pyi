from typing import Any, Iterable, Mapping, Optional

from ._wapo import BIN_NAMES as BIN_NAMES
from ._wapo import COUNT_NAMES as COUNT_NAMES
from ._wapo import OBJECTIVES as OBJECTIVES
from ._wapo import Config as Config
from ._wapo import Output as Output

__version__: str

def token_objective(
    cfg: Config,
    *,
    group_ids: Any,
    rewards: Any,
    mask: Any,
    logprobs: Any,
    old_logprobs: Any,
    sum_p_sq: Any = ...,
    global_counts: Optional[Mapping[str, int]] = ...,
) -> Output: ...
def logits_objective(
    cfg: Config,
    *,
    group_ids: Any,
    rewards: Any,
    mask: Any,
    logits: Any,
    tokens: Any,
    old_logprobs: Any,
    global_counts: Optional[Mapping[str, int]] = ...,
) -> Output: ...
def local_counts(cfg: Config, **batch: Any) -> dict: ...
def reduce_counts(counts: Iterable[Mapping[str, int]]) -> dict: ...
def normalizer(cfg: Config, counts: Mapping[str, int]) -> float: ...
