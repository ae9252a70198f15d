"""Type stubs of the extension module (called through the wrappers in wapo/__init__.py)."""

from typing import Any, Dict, List, Optional

import numpy as np

OBJECTIVES: List[str]
COUNT_NAMES: List[str]
BIN_NAMES: List[str]

class Config:
    """The objective's knobs, named as in a case file's ``config`` object:
    ``objective``, ``clip_eps``, ``clip_low``, ``clip_high``,
    ``importance_sampling``, ``aggregation``, ``normalize_by_kept_tokens``,
    ``include_bins``, ``exclude_bins``, ``max_seq_len``, ``temperature``,
    ``mask_positive_advantages``. An unknown or bad knob raises ``ValueError``."""

    def __init__(self, **knobs: Any) -> None: ...
    @staticmethod
    def from_dict(d: Dict[str, Any]) -> Config: ...
    def to_dict(self) -> Dict[str, Any]: ...
    @property
    def objective(self) -> str: ...
    @property
    def clip_eps(self) -> Optional[float]: ...
    @property
    def clip_low(self) -> float: ...
    @property
    def clip_high(self) -> float: ...
    @property
    def importance_sampling(self) -> bool: ...
    @property
    def aggregation(self) -> str:
        """The level in force: the override, or the objective's default."""
    @property
    def normalize_by_kept_tokens(self) -> bool: ...
    @property
    def include_bins(self) -> List[str]: ...
    @property
    def exclude_bins(self) -> List[str]: ...
    @property
    def mask_positive_advantages(self) -> bool: ...
    @property
    def max_seq_len(self) -> Optional[int]:
        """L_max, or None when not given (then T of each batch)."""
    @property
    def temperature(self) -> float: ...
    @property
    def winners_only(self) -> bool: ...

class Output:
    """One evaluation; arrays in the precision of the inputs."""

    @property
    def loss(self) -> float: ...
    @property
    def loss_sum(self) -> float: ...
    @property
    def normalizer(self) -> float: ...
    @property
    def advantages(self) -> np.ndarray:
        """(N)"""
    @property
    def weights(self) -> np.ndarray:
        """(N)"""
    @property
    def grad_logprobs(self) -> np.ndarray:
        """(N, T) ∂loss/∂ℓ."""
    @property
    def grad_logits(self) -> Optional[np.ndarray]:
        """(N, T, V) ∂loss/∂z at logits level, else None."""
    @property
    def logprobs(self) -> Optional[np.ndarray]:
        """(N, T) at logits level, else None."""
    @property
    def entropy(self) -> Optional[np.ndarray]:
        """(N, T) at logits level, else None."""
    @property
    def sum_p_sq(self) -> Optional[np.ndarray]:
        """(N, T) at logits level, else None."""
    @property
    def clipped_tokens(self) -> int: ...
    @property
    def bin_counts(self) -> Dict[str, int]: ...
    @property
    def diagnostics(self) -> Dict[str, float]: ...
    @property
    def counts(self) -> Dict[str, int]: ...

def token_objective(
    cfg: Config,
    group_ids: np.ndarray,
    rewards: np.ndarray,
    mask: np.ndarray,
    logprobs: np.ndarray,
    old_logprobs: np.ndarray,
    sum_p_sq: Optional[np.ndarray] = None,
    global_counts: Optional[Dict[str, int]] = None,
) -> Output: ...
def logits_objective(
    cfg: Config,
    group_ids: np.ndarray,
    rewards: np.ndarray,
    mask: np.ndarray,
    logits: np.ndarray,
    tokens: np.ndarray,
    old_logprobs: np.ndarray,
    global_counts: Optional[Dict[str, int]] = None,
) -> Output: ...
def reduce_counts(counts: List[Dict[str, int]]) -> Dict[str, int]: ...
def normalizer(cfg: Config, counts: Dict[str, int]) -> float: ...
