// The per-sequence engine of a fused evaluation on the device: the core's
// token-level engine (objective/mod.rs, plan.rs, advantage.rs, aggregate.rs,
// surrogate.rs) for one batch of N rows of T tokens, in f32, in three
// kernels between the stats pass and the gradient pass:
//   seq_rows   one workgroup per row: its advantage (from its group's
//              rewards), sequence filter, n_i, GSPO's s_i, and the row sums
//              the weights need (kept tokens, Σ k·L, Σ k·∂L/∂s, the counts);
//   seq_finish one workgroup: w_i, D, the loss, the (9) counts;
//   seq_tokens one workgroup per row: the (N, T) outputs and ∂loss/∂ℓ.
// Each input check of the host engine raises a flag bit instead of an
// error; the caller reads the flags back once and, when one is set, runs
// the host engine, which reports the error with its position.
// Parameters: P (`EngineParams` of engine.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> ids: array<f32>;
@group(0) @binding(1) var<storage, read> rewards: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> old: array<f32>;
@group(0) @binding(4) var<storage, read> logp: array<f32>;
@group(0) @binding(5) var<storage, read> sum_p_sq: array<f32>;
@group(0) @binding(6) var<storage, read> tokens: array<f32>;
// (N, ROW) per-row quantities, slots below.
@group(0) @binding(8) var<storage, read_write> rows: array<f32>;
// [flags, loss_sum, loss, D, counts (9), pad (3), w (N), A (N)].
@group(0) @binding(9) var<storage, read_write> small: array<f32>;
// (4, groups): per group its size, winners, Σ S·n and Σ max(kept, 1).
@group(0) @binding(10) var<storage, read_write> per_group: array<atomic<u32>>;
// [flags (N), ratio, keep, clipped, bins, ∂loss/∂ℓ, ∂loss/∂ℓ / τ (N, T each)].
@group(0) @binding(11) var<storage, read_write> planes: array<f32>;

const WG: u32 = 256u;
const ROW: u32 = 20u;
const R_ADV: u32 = 0u;
const R_SEQ: u32 = 1u;
const R_N: u32 = 2u;
const R_KEPT: u32 = 3u;
const R_LOSS: u32 = 4u;
const R_DS: u32 = 5u;
const R_S: u32 = 6u;
const R_FLAGS: u32 = 7u;
const R_COUNTS: u32 = 8u;
const R_W: u32 = 17u;
const R_SCALE: u32 = 18u;
const SMALL_W: u32 = 16u;

// Flag bits, one per input check (engine.rs names them).
const BAD_IDS: u32 = 1u;
const BAD_REWARDS: u32 = 2u;
const BAD_MASK: u32 = 4u;
const BAD_LOGP: u32 = 8u;
const BAD_OLD: u32 = 16u;
const BAD_SUM_P_SQ: u32 = 32u;
const BAD_TOKENS: u32 = 64u;

var<workgroup> wflags: atomic<u32>;
var<workgroup> wsum: array<atomic<u32>, 8>;

// a·b where b ≠ 0, else 0 (Binary::MaskMul): 0·±inf stays 0.
fn mask_mul(a: f32, b: f32) -> f32 {
    if b == 0.0 {
        return 0.0;
    }
    return a * b;
}

fn valid_index(x: f32, n: u32) -> bool {
    return x >= 0.0 && x < f32(n) && floor(x) == x;
}

fn one_if(c: bool) -> f32 {
    return select(0.0, 1.0, c);
}

// The advantage of row i from its group's rewards (every thread of the
// workgroup calls it). Means take one correction pass, as Groups::mean
// does; a group of equal rewards has advantage exactly 0.
fn advantage(i: u32, lid: u32) -> f32 {
    let r = rewards[i];
    let g = ids[i];
    var s = 0.0;
    var c = 0.0;
    var lo = r;
    var hi = r;
    for (var j = lid; j < P.n; j += WG) {
        if ids[j] == g {
            let x = rewards[j];
            s += x;
            c += 1.0;
            lo = min(lo, x);
            hi = max(hi, x);
        }
    }
    let cnt = reduce_lanes(c, lid, false);
    let mean0 = reduce_lanes(s, lid, false) / cnt;
    let equal = reduce_lanes(hi, lid, true) == -reduce_lanes(-lo, lid, true);
    var f = 0.0;
    for (var j = lid; j < P.n; j += WG) {
        if ids[j] == g {
            f += rewards[j] - mean0;
        }
    }
    let mean = mean0 + reduce_lanes(f, lid, false) / cnt;
    var q = 0.0;
    for (var j = lid; j < P.n; j += WG) {
        if ids[j] == g {
            let d = rewards[j] - mean;
            q += d * d;
        }
    }
    let var0 = reduce_lanes(q, lid, false) / cnt;
    var q2 = 0.0;
    for (var j = lid; j < P.n; j += WG) {
        if ids[j] == g {
            let d = rewards[j] - mean;
            q2 += d * d - var0;
        }
    }
    let sd = sqrt(var0 + reduce_lanes(q2, lid, false) / cnt);
    var a = r;
    if P.advantage == 1u {
        a = select(r - mean, 0.0, equal);
    } else if P.advantage == 2u {
        a = select((r - mean) / (sd + 1e-8), 0.0, equal);
    }
    return a;
}

// The clipped surrogate of one token: (L, ∂L/∂x, clipped), autograd's tie
// rule (surrogate.rs).
fn surrogate(x: f32, a: f32) -> vec3<f32> {
    let clamped = min(max(x, P.lo), P.hi);
    let p = x * a;
    let q = clamped * a;
    let inside = one_if(P.lo < x && x < P.hi);
    let gate = one_if(p < q) + one_if(q < p) * inside + one_if(p == q) * (1.0 + inside) * 0.5;
    return vec3<f32>(-min(p, q), -(gate * a), one_if(clamped != x));
}

struct Token {
    code: f32,
    keep: f32,
    // The ratio output x.
    x: f32,
    loss: f32,
    // ∂L/∂ℓ before weights (token ratio and no ratio).
    dl: f32,
    // ∂L/∂s (sequence ratio).
    dldx: f32,
    clipped: f32,
}

// Token k of a row with advantage a, sequence filter S and GSPO ratio s.
fn token(k: u32, a: f32, seq: f32, s: f32) -> Token {
    let m = mask[k];
    let lp = logp[k];
    let lr = mask_mul(lp - old[k], m);
    var t: Token;
    t.code = one_if(exp(lp) < sum_p_sq[k]) + 2.0 * one_if(a < 0.0);
    t.keep = m * seq;
    if ((P.bins >> u32(t.code)) & 1u) == 0u {
        t.keep = 0.0;
    }
    t.x = exp(lr);
    t.dldx = 0.0;
    t.clipped = 0.0;
    switch P.ratio {
        case 0u: {
            let sur = surrogate(t.x, a);
            t.loss = sur.x;
            t.dl = mask_mul(t.x, sur.y);
            t.clipped = sur.z;
        }
        case 1u: {
            t.x = s;
            let sur = surrogate(s, a);
            t.loss = sur.x;
            t.dl = 0.0;
            t.dldx = sur.y;
            t.clipped = sur.z;
        }
        case 2u: {
            t.loss = lp * -a;
            t.dl = -a;
        }
        default: {
            t.loss = -lp;
            t.dl = -1.0;
        }
    }
    return t;
}

@compute @workgroup_size(256)
fn seq_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg);
    if i >= P.n {
        return;
    }
    if lid == 0u {
        atomicStore(&wflags, 0u);
    }
    workgroupBarrier();
    var flags = 0u;
    if lid == 0u {
        if !valid_index(ids[i], P.groups) {
            flags |= BAD_IDS;
        }
        if !is_finite(rewards[i]) {
            flags |= BAD_REWARDS;
        }
    }
    let a = advantage(i, lid);
    var seq = 1.0;
    if (P.seq_filter & 1u) != 0u && !(a > 0.0) {
        seq = 0.0;
    }
    if (P.seq_filter & 2u) != 0u && !(a < 0.0) {
        seq = 0.0;
    }
    let base = i * P.t;
    var n = 0.0;
    var lr = 0.0;
    for (var t = lid; t < P.t; t += WG) {
        let k = base + t;
        let m = mask[k];
        if m != 0.0 && m != 1.0 {
            flags |= BAD_MASK;
        }
        if m != 0.0 {
            if !is_finite(logp[k]) {
                flags |= BAD_LOGP;
            }
            if !is_finite(old[k]) {
                flags |= BAD_OLD;
            }
            if !is_finite(sum_p_sq[k]) {
                flags |= BAD_SUM_P_SQ;
            }
        }
        n += m;
        lr += mask_mul(logp[k] - old[k], m);
    }
    let n_all = reduce_lanes(n, lid, false);
    let s = exp(reduce_lanes(lr, lid, false) / (n_all + 1e-8));
    var kept = 0.0;
    var loss = 0.0;
    var ds = 0.0;
    var c: array<f32, 9>;
    for (var q = 0u; q < 9u; q++) {
        c[q] = 0.0;
    }
    for (var t = lid; t < P.t; t += WG) {
        let k = base + t;
        let x = token(k, a, seq, s);
        kept += x.keep;
        loss += mask_mul(x.loss, x.keep);
        ds += x.dldx * x.keep;
        c[0] += x.clipped * x.keep;
        let code = u32(x.code);
        c[1u + code] += mask[k];
        c[5u + code] += x.keep;
    }
    atomicOr(&wflags, flags);
    let kept_all = reduce_lanes(kept, lid, false);
    let loss_all = reduce_lanes(loss, lid, false);
    let ds_all = reduce_lanes(ds, lid, false);
    for (var q = 0u; q < 9u; q++) {
        c[q] = reduce_lanes(c[q], lid, false);
    }
    let all_flags = atomicLoad(&wflags);
    if lid == 0u {
        let r = i * ROW;
        rows[r + R_ADV] = a;
        rows[r + R_SEQ] = seq;
        rows[r + R_N] = n_all;
        rows[r + R_KEPT] = kept_all;
        rows[r + R_LOSS] = loss_all;
        rows[r + R_DS] = ds_all;
        rows[r + R_S] = s;
        rows[r + R_FLAGS] = f32(all_flags);
        for (var q = 0u; q < 9u; q++) {
            rows[r + R_COUNTS + q] = c[q];
        }
    }
}

// wsum slots of seq_finish.
const W_SEQ: u32 = 0u;
const W_SEQ_TOKENS: u32 = 1u;
const W_MAX_N: u32 = 2u;
const W_KEPT: u32 = 3u;
const W_FLAGS: u32 = 4u;
const W_WIN_GROUPS: u32 = 5u;
const W_TOKEN_GROUPS: u32 = 6u;

@compute @workgroup_size(256)
fn seq_finish(@builtin(local_invocation_index) lid: u32) {
    let gs = P.groups;
    for (var g = lid; g < 4u * gs; g += WG) {
        atomicStore(&per_group[g], 0u);
    }
    if lid < 8u {
        atomicStore(&wsum[lid], 0u);
    }
    storageBarrier();
    workgroupBarrier();
    // Counts are integers: exact in u32 whatever the order.
    for (var i = lid; i < P.n; i += WG) {
        let r = i * ROW;
        let seq = u32(rows[r + R_SEQ]);
        let n = u32(rows[r + R_N]);
        let kept = u32(rows[r + R_KEPT]);
        atomicOr(&wsum[W_FLAGS], u32(rows[r + R_FLAGS]));
        atomicAdd(&wsum[W_SEQ], seq);
        atomicAdd(&wsum[W_SEQ_TOKENS], seq * n);
        atomicMax(&wsum[W_MAX_N], n);
        atomicAdd(&wsum[W_KEPT], kept);
        if valid_index(ids[i], gs) {
            let g = u32(ids[i]);
            atomicAdd(&per_group[g], 1u);
            atomicAdd(&per_group[gs + g], seq);
            atomicAdd(&per_group[2u * gs + g], seq * n);
            atomicAdd(&per_group[3u * gs + g], max(kept, 1u));
        }
    }
    storageBarrier();
    workgroupBarrier();
    for (var g = lid; g < gs; g += WG) {
        if atomicLoad(&per_group[gs + g]) > 0u {
            atomicAdd(&wsum[W_WIN_GROUPS], 1u);
        }
        if atomicLoad(&per_group[2u * gs + g]) > 0u {
            atomicAdd(&wsum[W_TOKEN_GROUPS], 1u);
        }
    }
    workgroupBarrier();
    let total_kept = f32(max(atomicLoad(&wsum[W_KEPT]), 1u));
    var d = 1.0;
    switch P.weighting {
        case 0u: {
            d = f32(max(atomicLoad(&wsum[W_SEQ]), 1u));
        }
        case 1u: {
            d = f32(max(atomicLoad(&wsum[W_TOKEN_GROUPS]), 1u));
        }
        case 2u: {
            d = f32(max(atomicLoad(&wsum[W_WIN_GROUPS]), 1u));
        }
        case 3u: {
            d = f32(max(atomicLoad(&wsum[W_SEQ_TOKENS]), 1u));
        }
        default: {
            d = f32(P.n) * f32(max(atomicLoad(&wsum[W_MAX_N]), 1u));
        }
    }
    // Kept-token weights at the global level: w = 1/Σ kept, D = 1.
    if P.by_kept == 1u && P.weighting >= 3u {
        d = 1.0;
    }
    var loss = 0.0;
    var c: array<f32, 9>;
    for (var q = 0u; q < 9u; q++) {
        c[q] = 0.0;
    }
    for (var i = lid; i < P.n; i += WG) {
        let r = i * ROW;
        let n = rows[r + R_N];
        let kept = rows[r + R_KEPT];
        var g = 0u;
        if valid_index(ids[i], gs) {
            g = u32(ids[i]);
        }
        var w = 1.0;
        if P.by_kept == 1u {
            if P.weighting == 0u {
                w = 1.0 / max(kept, 1.0);
            } else if P.weighting <= 2u {
                w = 1.0 / f32(atomicLoad(&per_group[3u * gs + g]));
            } else {
                w = 1.0 / total_kept;
            }
        } else {
            switch P.weighting {
                case 0u: {
                    w = 1.0 / max(n, 1.0);
                }
                case 1u: {
                    w = 1.0 / f32(max(atomicLoad(&per_group[2u * gs + g]), 1u));
                }
                case 2u: {
                    w = 1.0 / (f32(atomicLoad(&per_group[g])) * f32(P.lmax));
                }
                default: {
                    w = 1.0;
                }
            }
        }
        rows[r + R_W] = w;
        rows[r + R_SCALE] = w / d;
        small[SMALL_W + i] = w;
        small[SMALL_W + P.n + i] = rows[r + R_ADV];
        loss += rows[r + R_LOSS] * w;
        for (var q = 0u; q < 9u; q++) {
            c[q] += rows[r + R_COUNTS + q];
        }
    }
    let loss_all = reduce_lanes(loss, lid, false);
    for (var q = 0u; q < 9u; q++) {
        c[q] = reduce_lanes(c[q], lid, false);
    }
    if lid == 0u {
        small[0] = f32(atomicLoad(&wsum[W_FLAGS]));
        small[1] = loss_all;
        small[2] = loss_all / d;
        small[3] = d;
        for (var q = 0u; q < 9u; q++) {
            small[4u + q] = c[q];
        }
    }
}

@compute @workgroup_size(256)
fn seq_tokens(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg);
    if i >= P.n {
        return;
    }
    if lid == 0u {
        atomicStore(&wflags, 0u);
    }
    workgroupBarrier();
    let r = i * ROW;
    let a = rows[r + R_ADV];
    let seq = rows[r + R_SEQ];
    let s = rows[r + R_S];
    let scale = rows[r + R_SCALE];
    // GSPO: ∂loss/∂ℓ_it = mask_it · Σ_t' k ∂L/∂s · (w_i/D) · s_i / (n_i + 1e-8).
    let per_seq = rows[r + R_DS] * scale * s / (rows[r + R_N] + 1e-8);
    let nt = P.n * P.t;
    let base = i * P.t;
    var flags = 0u;
    for (var t = lid; t < P.t; t += WG) {
        let k = base + t;
        if !valid_index(tokens[k], P.v) {
            flags |= BAD_TOKENS;
        }
        let x = token(k, a, seq, s);
        var grad = mask_mul(x.dl, x.keep) * scale;
        if P.ratio == 1u {
            grad = mask[k] * per_seq;
        }
        let o = P.n + k;
        planes[o] = x.x;
        planes[o + nt] = x.keep;
        planes[o + 2u * nt] = x.clipped * x.keep;
        planes[o + 3u * nt] = x.code;
        planes[o + 4u * nt] = grad;
        planes[o + 5u * nt] = grad * P.inv_t;
    }
    atomicOr(&wflags, flags);
    workgroupBarrier();
    if lid == 0u {
        planes[i] = f32(atomicLoad(&wflags));
    }
}
