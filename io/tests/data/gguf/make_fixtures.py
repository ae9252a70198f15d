"""Regenerates the fixtures of io/src/gguf/tests.rs with the independent Python implementation:
pip install gguf==0.19.0 numpy; python3 make_fixtures.py /path/to/SmolLM2-135M-Instruct.Q4_1.gguf
(run in this directory)."""
import sys

# --- smollm2_135m_q4_1.json
import json, numpy as np, gguf
from gguf.quants import dequantize
r = gguf.GGUFReader(sys.argv[1])
by = {t.name: t for t in r.tensors}
out = {"_comment": "Produced by Python gguf %s (gguf.GGUFReader + gguf.quants.dequantize) and numpy %s from "
       "SmolLM2-135M-Instruct.Q4_1.gguf. Rows are in the file's (GGUF) row order, i.e. llama.cpp's permuted "
       "order for attn_q/attn_k; shape is row-major (outermost first); sum is the float64 sum of all elements."
       % (__import__("importlib.metadata").metadata.version("gguf"), np.__version__),
       "tensors": {}}
for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "token_embd.weight", "blk.29.ffn_down.weight", "blk.0.attn_norm.weight"]:
    t = by[name]
    x = dequantize(t.data, t.tensor_type).astype(np.float32)
    shape = [int(d) for d in reversed(t.shape)]
    x = x.reshape(shape) if len(shape) > 1 else x.reshape(1, -1)
    rows = {}
    for ri in sorted({0, 1, 37, x.shape[0] - 1} if x.shape[0] > 37 else {0}):
        rows[str(ri)] = [float(v) for v in x[ri, :16]]
    out["tensors"][name] = {"type": t.tensor_type.name, "shape": shape, "sum": float(x.astype(np.float64).sum()), "rows": rows}
json.dump(out, open("smollm2_135m_q4_1.json", "w"), indent=1)

# --- quantize_reference.json
import json, numpy as np, importlib.metadata as md
from gguf.quants import quantize
from gguf import GGMLQuantizationType as T
rng = np.random.default_rng(7)
x = (rng.standard_normal(96) * 0.1).astype(np.float32)
x[40] = -0.9   # block 1: largest magnitude negative (Q4_0 keeps its sign)
x[64:96] = np.abs(x[64:96]) + 0.25  # block 2: all positive, min far from 0 (Q4_1's m)
out = {"_comment": "Inputs (numpy default_rng(7), standard normal x 0.1, f32, with edits) and their blocks as quantized by "
       "Python gguf %s gguf.quants.quantize (numpy %s), hex. One row of 96 = 3 blocks." % (md.version("gguf"), np.__version__),
       "input": [float(v) for v in x]}
for t in (T.Q8_0, T.Q4_0, T.Q4_1):
    out[t.name] = quantize(x.reshape(1, -1), t).tobytes().hex()
json.dump(out, open("quantize_reference.json", "w"), indent=1)
