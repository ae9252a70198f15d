// Pass 1 of the fused objective: one online pass over each row of logits
// (N·T rows of V) at temperature τ, exactly the streaming form of
// `wapo_core::logits::row_stats`: running max m of the raw logits and,
// relative to it, Σe, Σe·d, Σe², Σe²·d with d = (z − m)/τ and e = exp(d),
// rescaled when m grows. The shift comes before the scale: z − m is exact
// near the max, while z/τ − m/τ would subtract two rounded numbers of
// magnitude |z|/τ (~1e-4 of error each at 1300). −inf entries (masked
// vocabulary) contribute nothing; a NaN or +inf entry makes the row NaN, so
// the sampled-logit check reports it.
//
// Outputs per row: m and log Σe side by side in `shift` (lse = m/τ + log Σe,
// kept apart so that ℓ = (z_y − m)/τ − log Σe and the gradient's
// (z − m)/τ − log Σe lose no digits to a large m), ℓ, H = log Σe − Σe·d/Σe,
// Σp² = Σe²/(Σe)² and Σp²·log p = (Σe²·d − log Σe·Σe²)/(Σe)².
// Token ids are validated after this pass (on the host copy read back with
// its outputs), so an out-of-range id is clamped into its row here and the
// call then fails.

// Parameters: P (`StatsParams` of stats.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> z4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> tokens: array<f32>;
@group(0) @binding(3) var<storage, read_write> shift_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> logp_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> ent_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> sps_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> spsl_out: array<f32>;

var<workgroup> w_m: array<f32, 256>;
var<workgroup> w_s0: array<f32, 256>;
var<workgroup> w_s1: array<f32, 256>;
var<workgroup> w_s2: array<f32, 256>;
var<workgroup> w_s3: array<f32, 256>;
var<workgroup> w_bad: array<u32, 256>;

struct Acc {
    m: f32,
    s0: f32,
    s1: f32,
    s2: f32,
    s3: f32,
    bad: u32,
}

fn acc_new() -> Acc {
    return Acc(neg_inf(), 0.0, 0.0, 0.0, 0.0, 0u);
}

// Moves the sums to a new, larger max `mx` (m may be −inf: sums are 0 then).
fn rescale(a: ptr<function, Acc>, mx: f32, inv_t: f32) {
    if !is_neg_inf((*a).m) {
        let dm = ((*a).m - mx) * inv_t;
        let f = exp(dm);
        (*a).s1 = f * ((*a).s1 + dm * (*a).s0);
        (*a).s3 = f * f * ((*a).s3 + dm * (*a).s2);
        (*a).s2 = f * f * (*a).s2;
        (*a).s0 = f * (*a).s0;
    }
    (*a).m = mx;
}

fn absorb1(a: ptr<function, Acc>, x: f32, inv_t: f32) {
    if is_neg_inf(x) {
        return;
    }
    if !is_finite(x) {
        (*a).bad = 1u;
        return;
    }
    if x > (*a).m {
        rescale(a, x, inv_t);
    }
    let d = (x - (*a).m) * inv_t;
    let e = exp(d);
    (*a).s0 = (*a).s0 + e;
    (*a).s1 = (*a).s1 + e * d;
    (*a).s2 = (*a).s2 + e * e;
    (*a).s3 = (*a).s3 + e * e * d;
}

fn absorb4(a: ptr<function, Acc>, x: vec4<f32>, inv_t: f32) {
    let ninf = vec4<bool>(is_neg_inf(x.x), is_neg_inf(x.y), is_neg_inf(x.z), is_neg_inf(x.w));
    let fin = vec4<bool>(is_finite(x.x), is_finite(x.y), is_finite(x.z), is_finite(x.w));
    if any(!(fin | ninf)) {
        (*a).bad = 1u;
        return;
    }
    if all(ninf) {
        return;
    }
    let lo = vec4<f32>(-3.0e38);
    let xm = select(x, lo, ninf);
    let mx = max(max(xm.x, xm.y), max(xm.z, xm.w));
    if mx > (*a).m {
        rescale(a, mx, inv_t);
    }
    let d = select((x - vec4<f32>((*a).m)) * inv_t, vec4<f32>(0.0), ninf);
    let e = select(exp(d), vec4<f32>(0.0), ninf);
    let ee = e * e;
    (*a).s0 = (*a).s0 + dot(e, vec4<f32>(1.0));
    (*a).s1 = (*a).s1 + dot(e, d);
    (*a).s2 = (*a).s2 + dot(ee, vec4<f32>(1.0));
    (*a).s3 = (*a).s3 + dot(ee, d);
}

fn merge(a: Acc, b: Acc, inv_t: f32) -> Acc {
    var r = a;
    r.bad = a.bad | b.bad;
    if is_neg_inf(b.m) {
        return r;
    }
    if is_neg_inf(a.m) {
        var q = b;
        q.bad = r.bad;
        return q;
    }
    let m = max(a.m, b.m);
    let da = (a.m - m) * inv_t;
    let db = (b.m - m) * inv_t;
    let fa = exp(da);
    let fb = exp(db);
    r.m = m;
    r.s0 = fa * a.s0 + fb * b.s0;
    r.s1 = fa * (a.s1 + da * a.s0) + fb * (b.s1 + db * b.s0);
    r.s2 = fa * fa * a.s2 + fb * fb * b.s2;
    r.s3 = fa * fa * (a.s3 + da * a.s2) + fb * fb * (b.s3 + db * b.s2);
    return r;
}

fn store(lid: u32, a: Acc) {
    w_m[lid] = a.m;
    w_s0[lid] = a.s0;
    w_s1[lid] = a.s1;
    w_s2[lid] = a.s2;
    w_s3[lid] = a.s3;
    w_bad[lid] = a.bad;
}

fn load(i: u32) -> Acc {
    return Acc(w_m[i], w_s0[i], w_s1[i], w_s2[i], w_s3[i], w_bad[i]);
}

// Combines the TPR partial accumulators of each row; lane 0 gets the total.
fn reduce_row(a: Acc, lid: u32, inv_t: f32) -> Acc {
    let lane = lid % TPR;
    store(lid, a);
    workgroupBarrier();
    for (var stride = TPR / 2u; stride > 0u; stride = stride / 2u) {
        if lane < stride {
            store(lid, merge(load(lid), load(lid + stride), inv_t));
        }
        workgroupBarrier();
    }
    return load(lid);
}

// `zy` is the sampled token's raw logit.
fn finish(row: u32, a: Acc, zy: f32, inv_t: f32) {
    let o = P.row0 + row;
    if a.bad != 0u {
        shift_out[2u * o] = nan();
        shift_out[2u * o + 1u] = nan();
        logp_out[o] = nan();
        ent_out[o] = nan();
        sps_out[o] = nan();
        spsl_out[o] = nan();
        return;
    }
    if is_neg_inf(a.m) {
        shift_out[2u * o] = neg_inf();
        shift_out[2u * o + 1u] = 0.0;
        logp_out[o] = neg_inf();
        ent_out[o] = 0.0;
        sps_out[o] = 0.0;
        spsl_out[o] = 0.0;
        return;
    }
    let log_s0 = log(a.s0);
    let s0sq = a.s0 * a.s0;
    shift_out[2u * o] = a.m;
    shift_out[2u * o + 1u] = log_s0;
    if is_neg_inf(zy) {
        logp_out[o] = neg_inf();
    } else {
        logp_out[o] = (zy - a.m) * inv_t - log_s0;
    }
    ent_out[o] = log_s0 - a.s1 / a.s0;
    sps_out[o] = a.s2 / s0sq;
    spsl_out[o] = (a.s3 - log_s0 * a.s2) / s0sq;
}

@compute @workgroup_size(256)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = row_of(wid, nwg, lid);
    let lane = lid % TPR;
    let live = row < P.rows;
    let v4 = P.v / 4u;
    let inv_t = P.inv_t;
    let base4 = P.z / 4u + row * v4;
    var a = acc_new();
    if live {
        for (var j = lane; j < v4; j = j + TPR) {
            absorb4(&a, z4[base4 + j], inv_t);
        }
    }
    let total = reduce_row(a, lid, inv_t);
    if live && lane == 0u {
        let y = min(u32(tokens[P.row0 + row]), P.v - 1u);
        finish(row, total, z4[base4 + y / 4u][y % 4u], inv_t);
    }
}

@compute @workgroup_size(256)
fn main_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = row_of(wid, nwg, lid);
    let lane = lid % TPR;
    let live = row < P.rows;
    let v = P.v;
    let inv_t = P.inv_t;
    let base = P.z + row * v;
    var a = acc_new();
    if live {
        for (var j = lane; j < v; j = j + TPR) {
            absorb1(&a, z[base + j], inv_t);
        }
    }
    let total = reduce_row(a, lid, inv_t);
    if live && lane == 0u {
        let y = min(u32(tokens[P.row0 + row]), v - 1u);
        finish(row, total, z[base + y], inv_t);
    }
}
