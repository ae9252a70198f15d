// One sampling step: a workgroup per row. Each of the 64 threads owns a
// contiguous chunk of the vocabulary; chunk maxima and chunk argmaxes go to
// workgroup memory, thread 0 combines them in chunk order, and the draw is
// the inverse-CDF walk of step.wgsl over every token.
//
// The reference accumulates in f64; here the sums are f32 with Neumaier
// compensation (error ~1 ulp of the sum instead of ~v ulp) and exp is range
// reduced (exp_acc), so a different token is drawn only when u·Σ lies within
// a few ulp of a CDF boundary. "Has mass" is decided as the f64 reference
// decides it (exp(d) > 0 in f64, i.e. d > −745.13), not by the f32 exp.

// Parameters: P (`SampleParams` of mod.rs, where the struct is declared).

// Bindings: those of step.wgsl.

const WG: u32 = 64u;

var<workgroup> cmax: array<f32, 64>;
var<workgroup> cbest: array<u32, 64>;

// The max of z/τ over the row.
var<private> row_max: f32;

// Every term enters the sum, as in the reference.
fn cdf_term(k: u32) -> Term {
    let d = logits[base + k] / P.step.tau - row_max;
    return Term(exp_acc(d), true, has_mass(d));
}

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
    let tau = P.step.tau;
    let greedy = P.greedy != 0u;
    step_row(i, lid);

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
    row_max = m;
    cdf_chunks(lid);
    if lid != 0u {
        return;
    }
    let cdf = cdf_total();

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
        pick = cdf_draw(i, cdf);
    }
    if pick == NONE {
        pick = 0u;
    }
    step_write(i, pick, (logits[base + pick] / tau - m) - cdf.log_sum);
}
