// One sampling step: a workgroup per row. Each of the 64 threads owns a
// contiguous chunk of the vocabulary; chunk maxima, compensated (Neumaier)
// chunk sums, chunk argmaxes and the first/last token with mass go to
// workgroup memory, and thread 0 combines them in chunk order, then walks the
// inverse CDF down to the element inside the chunk where u·Σ falls.
//
// The reference accumulates in f64; here the sums are f32 with Neumaier
// compensation (error ~1 ulp of the sum instead of ~v ulp) and exp is range
// reduced (exp_acc), so a different token is drawn only when u·Σ lies within
// a few ulp of a CDF boundary. "Has mass" is decided as the f64 reference
// decides it (exp(d) > 0 in f64, i.e. d > −745.13), not by the f32 exp.

// Parameters: P (`SampleParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> uniforms: array<f32>;
@group(0) @binding(6) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(7) var<storage, read_write> tokens: array<u32>;

const WG: u32 = 64u;
const NONE: u32 = 0xffffffffu;

var<workgroup> cmax: array<f32, 64>;
var<workgroup> csum: array<f32, 64>;
var<workgroup> cbest: array<u32, 64>;
var<workgroup> cfirst: array<u32, 64>;
var<workgroup> clast: array<u32, 64>;

@compute @workgroup_size(64)
fn sample(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg);
    if i >= P.step.rows {
        return;
    }
    let v = P.step.v;
    let tau = P.step.tau;
    let greedy = P.greedy != 0u;
    let base = P.step.logits + (i / P.step.div) * v;
    let chunk = (v + WG - 1u) / WG;
    let k0 = min(lid * chunk, v);
    let k1 = min(k0 + chunk, v);

    // Chunk max of z/τ (NaN ignored, as f64::max does) and chunk argmax of
    // z, the first maximum among the non-NaN entries.
    var mx = neg_inf();
    var best = NONE;
    var bz = 0.0;
    for (var k = k0; k < k1; k++) {
        let z = logits[base + k];
        mx = max_nan(mx, z / tau);
        if !is_nan(z) && (best == NONE || z > bz) {
            best = k;
            bz = z;
        }
    }
    cmax[lid] = mx;
    cbest[lid] = best;
    workgroupBarrier();
    var m = neg_inf();
    for (var j = 0u; j < WG; j++) {
        m = max_nan(m, cmax[j]);
    }

    var acc = vec2<f32>(0.0, 0.0);
    var first = NONE;
    var last = NONE;
    for (var k = k0; k < k1; k++) {
        let d = logits[base + k] / tau - m;
        acc = neumaier(acc, exp_acc(d));
        if has_mass(d) {
            if first == NONE {
                first = k;
            }
            last = k;
        }
    }
    csum[lid] = acc.x + acc.y;
    cfirst[lid] = first;
    clast[lid] = last;
    workgroupBarrier();
    if lid != 0u {
        return;
    }

    var total = vec2<f32>(0.0, 0.0);
    var any_first = NONE;
    var any_last = NONE;
    for (var j = 0u; j < WG; j++) {
        total = neumaier(total, csum[j]);
        if any_first == NONE {
            any_first = cfirst[j];
        }
        if clast[j] != NONE {
            any_last = clast[j];
        }
    }
    let sum = total.x + total.y;
    // The maximal term is 1, so Σ ≥ 1; near 1, log1p of the exact excess
    // (s − 1 is exact for s in [1, 2]) keeps small log-probs accurate.
    var log_sum = log(sum);
    if total.x <= 2.0 {
        log_sum = log1p_acc(max((total.x - 1.0) + total.y, 0.0));
    }
    if any_last == NONE {
        any_last = 0u;
    }

    var pick = NONE;
    if greedy {
        // The reference keeps index 0 when z[0] is NaN (nothing compares
        // greater); otherwise it finds the first maximum of the rest.
        pick = 0u;
        if !is_nan(logits[base]) {
            var pz = 0.0;
            var have = false;
            for (var j = 0u; j < WG; j++) {
                let b = cbest[j];
                if b != NONE && (!have || logits[base + b] > pz) {
                    pick = b;
                    pz = logits[base + b];
                    have = true;
                }
            }
        }
    } else {
        let goal = uniforms[P.step.uniforms + i * P.step.steps + P.step.s] * sum;
        if goal <= 0.0 {
            // Every token with mass passes `goal < acc`: the first one.
            pick = any_first;
        } else {
            // acc_k = R.s + (R.c + local_k) with R the running sum of the
            // chunk sums: at the end of a chunk it is exactly the value the
            // chunk test used, so a chunk that passes yields its element.
            var pre = vec2<f32>(0.0, 0.0);
            for (var j = 0u; j < WG && pick == NONE; j++) {
                if goal < pre.x + (pre.y + csum[j]) {
                    var within = vec2<f32>(0.0, 0.0);
                    let c0 = min(j * chunk, v);
                    let c1 = min(c0 + chunk, v);
                    for (var k = c0; k < c1; k++) {
                        let d = logits[base + k] / tau - m;
                        within = neumaier(within, exp_acc(d));
                        if has_mass(d) && goal < pre.x + (pre.y + (within.x + within.y)) {
                            pick = k;
                            break;
                        }
                    }
                }
                pre = neumaier(pre, csum[j]);
            }
        }
        if pick == NONE {
            // Rounding (or a NaN) left u·Σ above the last sum: the reference
            // takes the last token with mass.
            pick = any_last;
        }
    }
    if pick == NONE {
        pick = 0u;
    }
    let out = i * P.step.steps + P.step.s;
    tokens[P.step.tokens + out] = pick;
    logprobs[P.step.logprobs + out] = (logits[base + pick] / tau - m) - log_sum;
}
