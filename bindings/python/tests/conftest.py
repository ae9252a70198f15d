"""Shared helpers: the golden cases of tests/data/golden and the tolerances
of docs/CASES.md."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import wapo

GOLDEN = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data" / "golden"
CASES = sorted(GOLDEN.glob("*.json"))

# docs/CASES.md: float64 |a − b| ≤ 1e-9 + 1e-7·|b|; float32 1e-4 relative,
# with the absolute floor of 1e-4 of the field's scale (at least 0.1) that
# wapo_core::case::Tolerance::F32 documents.
F64 = dict(abs=1e-9, rel=1e-7, floor=None)
F32 = dict(abs=1e-4, rel=1e-4, floor=0.1)


def nulls(x):
    """A JSON array with ``null`` for −inf, as a float64 array."""
    if isinstance(x, list):
        return [nulls(v) for v in x]
    return -np.inf if x is None else x


def load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def call(case: dict, dtype=np.float64, **extra) -> wapo.Output:
    """Runs a case file through the Python API, the inputs cast to ``dtype``."""
    cfg = wapo.Config(**case["config"])
    f = lambda k: np.asarray(nulls(case[k]), dtype=dtype)  # noqa: E731
    common = dict(group_ids=case["group_ids"], rewards=f("rewards"), mask=f("mask"), old_logprobs=f("old_logprobs"))
    if "logits" in case:
        return wapo.logits_objective(cfg, logits=f("logits"), tokens=case["tokens"], **common, **extra)
    sq = f("sum_p_sq") if case.get("sum_p_sq") is not None else None
    return wapo.token_objective(cfg, logprobs=f("logprobs"), sum_p_sq=sq, **common, **extra)


def assert_close(name: str, actual, expected, tol: dict) -> None:
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(nulls(expected), dtype=np.float64)
    assert a.shape == b.shape, f"{name}: shape {a.shape} != expected {b.shape}"
    inf = ~np.isfinite(b)
    assert np.array_equal(a[inf], b[inf]), f"{name}: non-finite entries differ"
    a, b = a[~inf], b[~inf]
    if b.size == 0:
        return
    scale = 1.0 if tol["floor"] is None else max(float(np.abs(b).max()), tol["floor"])
    bound = tol["abs"] * scale + tol["rel"] * np.abs(b)
    err = np.abs(a - b)
    k = int(np.argmax(err - bound))
    assert np.all(err <= bound), f"{name}: |{a[k]} − {b[k]}| = {err[k]:.3g} > {bound[k]:.3g} (flat index {k})"


@pytest.fixture(params=CASES, ids=[p.stem for p in CASES])
def case(request) -> dict:
    return load(request.param)
