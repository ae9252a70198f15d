// What both sampling kernels (sample.wgsl, truncated.wgsl) share: the
// bindings of a step (bound by `Step` in mod.rs, parameters `P.step`), the
// split of a row's vocabulary into WG contiguous chunks, one per thread,
// and the inverse-CDF draw. Each thread sums its chunk's terms
// exp(z/τ − max) (Neumaier); thread 0 combines the chunk sums in chunk
// order, then walks the inverse CDF down to the token inside the chunk
// where u·Σ falls. One walk for both, so that the truncated kernel draws
// exactly as the unrestricted one does.
//
// The includer defines WG (threads per workgroup) and `cdf_term(k)`, token
// k's term; math.wgsl comes before this file.

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> uniforms: array<f32>;
@group(0) @binding(6) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(7) var<storage, read_write> tokens: array<u32>;

const NONE: u32 = 0xffffffffu;

// This row: the index of its first logit, the tokens per chunk, and this
// thread's chunk k0..k1 (set by `step_row`).
var<private> base: u32;
var<private> chunk: u32;
var<private> k0: u32;
var<private> k1: u32;

// The tokens of chunk j.
fn chunk_span(j: u32) -> vec2<u32> {
    let c0 = min(j * chunk, P.step.v);
    return vec2<u32>(c0, min(c0 + chunk, P.step.v));
}

// Sets up row i for thread lid.
fn step_row(i: u32, lid: u32) {
    base = P.step.logits + (i / P.step.div) * P.step.v;
    chunk = (P.step.v + WG - 1u) / WG;
    let span = chunk_span(lid);
    k0 = span.x;
    k1 = span.y;
}

// Writes row i's pick and its log-probability.
fn step_write(i: u32, token: u32, logprob: f32) {
    let out = i * P.step.steps + P.step.s;
    tokens[P.step.tokens + out] = token;
    logprobs[P.step.logprobs + out] = logprob;
}

// Token k's share of the CDF: `e` joins the running sum when `adds`; the
// token can be drawn (it has mass) when `mass`. The unrestricted kernel
// adds every term, 0 or NaN where there is no mass, as it always has.
struct Term {
    e: f32,
    adds: bool,
    mass: bool,
}

// Per chunk: the (compensated) sum of its terms, its first and last token
// with mass (NONE if none).
var<workgroup> chunk_sum: array<f32, WG>;
var<workgroup> chunk_first: array<u32, WG>;
var<workgroup> chunk_last: array<u32, WG>;

// The whole row, as thread 0 combines it.
struct Cdf {
    sum: f32,
    log_sum: f32,
    first: u32,
    last: u32,
}

// Fills the chunk arrays with this thread's chunk. Every thread calls it
// (it ends with a barrier).
fn cdf_chunks(lid: u32) {
    var acc = vec2<f32>(0.0, 0.0);
    var first = NONE;
    var last = NONE;
    for (var k = k0; k < k1; k++) {
        let t = cdf_term(k);
        if t.adds {
            acc = neumaier(acc, t.e);
        }
        if t.mass {
            if first == NONE {
                first = k;
            }
            last = k;
        }
    }
    chunk_sum[lid] = acc.x + acc.y;
    chunk_first[lid] = first;
    chunk_last[lid] = last;
    workgroupBarrier();
}

// The chunks combined in chunk order: Σ, log Σ, the first and last token
// with mass.
fn cdf_total() -> Cdf {
    var total = vec2<f32>(0.0, 0.0);
    var first = NONE;
    var last = NONE;
    for (var j = 0u; j < WG; j++) {
        total = neumaier(total, chunk_sum[j]);
        if first == NONE {
            first = chunk_first[j];
        }
        if chunk_last[j] != NONE {
            last = chunk_last[j];
        }
    }
    let sum = total.x + total.y;
    // The maximal term is 1 (truncation keeps the most likely token), so
    // Σ ≥ 1; near 1, log1p of the exact excess (s − 1 is exact for s in
    // [1, 2]) keeps small log-probs accurate.
    var log_sum = log(sum);
    if total.x <= 2.0 {
        log_sum = log1p_acc(max((total.x - 1.0) + total.y, 0.0));
    }
    return Cdf(sum, log_sum, first, last);
}

// Row i's draw: the first token with mass whose running sum exceeds u·Σ;
// NONE only when no token has mass.
fn cdf_draw(i: u32, cdf: Cdf) -> u32 {
    let goal = uniforms[P.step.uniforms + i * P.step.steps + P.step.s] * cdf.sum;
    var pick = NONE;
    if goal <= 0.0 {
        // Every token with mass passes `goal < acc`: the first one.
        pick = cdf.first;
    } else {
        // acc_k = R.s + (R.c + local_k) with R the running sum of the
        // chunk sums: at the end of a chunk it is exactly the value the
        // chunk test used, so a chunk that passes yields its element.
        var pre = vec2<f32>(0.0, 0.0);
        for (var j = 0u; j < WG && pick == NONE; j++) {
            if goal < pre.x + (pre.y + chunk_sum[j]) {
                var within = vec2<f32>(0.0, 0.0);
                let span = chunk_span(j);
                for (var k = span.x; k < span.y; k++) {
                    let t = cdf_term(k);
                    if t.adds {
                        within = neumaier(within, t.e);
                    }
                    if t.mass && goal < pre.x + (pre.y + (within.x + within.y)) {
                        pick = k;
                        break;
                    }
                }
            }
            pre = neumaier(pre, chunk_sum[j]);
        }
    }
    if pick == NONE {
        // Rounding (or a NaN) left u·Σ above the last sum: the reference
        // takes the last token with mass.
        pick = cdf.last;
    }
    return pick;
}
