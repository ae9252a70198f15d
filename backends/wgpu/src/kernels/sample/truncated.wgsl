// One sampling step from the top-k / top-p truncation of softmax(z/τ): a
// workgroup of 256 threads per row, each thread owning a contiguous chunk
// of the vocabulary. The CPU's rule sorts the tokens with mass (most likely
// first, ties by id), keeps the first k, then the shortest prefix whose
// mass reaches p of the kept mass. Both cuts are prefixes of that order, so
// a cut is a (key, id) pair: a token is kept when its logit is above the
// key's, or equal to it with an id at most the cut's. No sort: the key is
// found by bisection over the 32 bits of an order-preserving u32 image of
// the logit (each step one counting or mass pass over the row), the id by
// counting the ties at that key in id order. The draw is then the inverse
// CDF over the kept tokens in id order, as the unrestricted kernel
// (sample.wgsl) draws, and ℓ is that of the renormalized kept distribution.

// Parameters: P (`TruncParams` of truncated.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> uniforms: array<f32>;
@group(0) @binding(6) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(7) var<storage, read_write> tokens: array<u32>;

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> red_f: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;
var<workgroup> cfirst: array<u32, 256>;
var<workgroup> clast: array<u32, 256>;
var<workgroup> bcast: u32;

// This row: its logits, this thread's chunk k0..k1, the max of z/τ, the cut.
var<private> base: u32;
var<private> k0: u32;
var<private> k1: u32;
var<private> mx: f32;
var<private> cut_key: u32;
var<private> cut_id: u32;

// An order-preserving image of a float: a < b ⇔ key(a) < key(b).
fn sort_key(z: f32) -> u32 {
    let b = bitcast<u32>(z);
    if (b & 0x80000000u) != 0u {
        return ~b;
    }
    return b | 0x80000000u;
}

fn from_key(k: u32) -> f32 {
    if (k & 0x80000000u) != 0u {
        return bitcast<f32>(k & 0x7fffffffu);
    }
    return bitcast<f32>(~k);
}

fn d_of(z: f32) -> f32 {
    return z / P.step.tau - mx;
}

// Kept by the cuts so far: with mass (NaN has none) and not past the cut.
fn kept(k: u32, z: f32) -> bool {
    if !has_mass(d_of(z)) {
        return false;
    }
    let key = sort_key(z);
    return key > cut_key || (key == cut_key && k <= cut_id);
}

// Workgroup sums, the same value (uniform) on every thread.
fn total_u(lid: u32, x: u32) -> u32 {
    red_u[lid] = x;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if lid < st {
            red_u[lid] += red_u[lid + st];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red_u[0]);
    workgroupBarrier();
    return r;
}

fn total_f(lid: u32, x: f32) -> f32 {
    red_f[lid] = x;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if lid < st {
            red_f[lid] += red_f[lid + st];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red_f[0]);
    workgroupBarrier();
    return r;
}

// Kept tokens whose key is ≥ `key`: their count and their mass Σ exp(d).
fn count_ge(lid: u32, key: u32) -> u32 {
    var c = 0u;
    for (var k = k0; k < k1; k++) {
        let z = logits[base + k];
        if kept(k, z) && sort_key(z) >= key {
            c += 1u;
        }
    }
    return total_u(lid, c);
}

fn mass_ge(lid: u32, key: u32) -> f32 {
    var acc = vec2<f32>(0.0, 0.0);
    for (var k = k0; k < k1; k++) {
        let z = logits[base + k];
        if kept(k, z) && sort_key(z) >= key {
            acc = neumaier(acc, exp_acc(d_of(z)));
        }
    }
    return total_f(lid, acc.x + acc.y);
}

// The largest key whose count (or mass) of kept tokens at or above it
// reaches `want`: the key of the token at the cut.
fn bisect_count(lid: u32, want: u32) -> u32 {
    var key = 0u;
    for (var b = 32u; b > 0u; b--) {
        let cand = key | (1u << (b - 1u));
        if count_ge(lid, cand) >= want {
            key = cand;
        }
    }
    return key;
}

fn bisect_mass(lid: u32, want: f32) -> u32 {
    var key = 0u;
    for (var b = 32u; b > 0u; b--) {
        let cand = key | (1u << (b - 1u));
        if mass_ge(lid, cand) >= want {
            key = cand;
        }
    }
    return key;
}

// The id of the m-th (from 1) kept token with `key`, in id order (NONE if
// there are fewer).
fn nth_tie(lid: u32, key: u32, m: u32) -> u32 {
    var c = 0u;
    for (var k = k0; k < k1; k++) {
        let z = logits[base + k];
        if kept(k, z) && sort_key(z) == key {
            c += 1u;
        }
    }
    red_u[lid] = c;
    workgroupBarrier();
    if lid == 0u {
        var id = NONE;
        var before = 0u;
        let chunk = (P.step.v + WG - 1u) / WG;
        for (var j = 0u; j < WG && id == NONE; j++) {
            if before + red_u[j] >= m {
                var seen = before;
                let c1 = min(min(j * chunk, P.step.v) + chunk, P.step.v);
                for (var k = min(j * chunk, P.step.v); k < c1; k++) {
                    let z = logits[base + k];
                    if kept(k, z) && sort_key(z) == key {
                        seen += 1u;
                        if seen == m {
                            id = k;
                            break;
                        }
                    }
                }
            }
            before += red_u[j];
        }
        bcast = id;
    }
    let r = workgroupUniformLoad(&bcast);
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn sample_truncated(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg);
    // Uniform per workgroup: the whole workgroup returns or none of it.
    if i >= P.step.rows {
        return;
    }
    let v = P.step.v;
    base = P.step.logits + (i / P.step.div) * v;
    let chunk = (v + WG - 1u) / WG;
    k0 = min(lid * chunk, v);
    k1 = min(k0 + chunk, v);
    cut_key = 0u;
    cut_id = NONE;

    var m = neg_inf();
    for (var k = k0; k < k1; k++) {
        m = max_nan(m, logits[base + k] / P.step.tau);
    }
    red_f[lid] = m;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if lid < st {
            red_f[lid] = max_nan(red_f[lid], red_f[lid + st]);
        }
        workgroupBarrier();
    }
    mx = workgroupUniformLoad(&red_f[0]);
    workgroupBarrier();

    // A row with a NaN or an infinite maximum has no distribution to
    // truncate (the CPU rule's): it is drawn from untruncated.
    var nans = 0u;
    for (var k = k0; k < k1; k++) {
        nans += u32(is_nan(logits[base + k]));
    }
    let cuts = total_u(lid, nans) == 0u && (bitcast<u32>(mx) & 0x7f800000u) != 0x7f800000u;

    // top-k: the k-th token of the order, when more than k have mass.
    if cuts && P.top_k > 0u && P.top_k < v {
        let key = bisect_count(lid, P.top_k);
        let with_mass = count_ge(lid, 0u);
        if with_mass > P.top_k {
            let ahead = count_ge(lid, key + 1u);
            let id = nth_tie(lid, key, P.top_k - ahead);
            cut_key = key;
            cut_id = id;
        }
    }
    // top-p: the first token of the order at which the kept mass reaches
    // p of the total; among tokens tied at its key, as many (in id order)
    // as the mass needs.
    if cuts && P.top_p > 0.0 && P.top_p < 1.0 {
        let want = P.top_p * mass_ge(lid, 0u);
        let key = bisect_mass(lid, want);
        let ahead = mass_ge(lid, key + 1u);
        let ties = count_ge(lid, key) - count_ge(lid, key + 1u);
        let e = exp_acc(d_of(from_key(key)));
        var need = 1u;
        if e > 0.0 {
            need = u32(clamp(ceil((want - ahead) / e), 1.0, f32(max(ties, 1u))));
        }
        while need > 1u && ahead + f32(need - 1u) * e >= want {
            need -= 1u;
        }
        while need < ties && ahead + f32(need) * e < want {
            need += 1u;
        }
        let id = nth_tie(lid, key, need);
        cut_key = key;
        cut_id = id;
    }

    // The inverse CDF over the kept tokens in id order (sample.wgsl's walk).
    var acc = vec2<f32>(0.0, 0.0);
    var first = NONE;
    var last = NONE;
    for (var k = k0; k < k1; k++) {
        let z = logits[base + k];
        if kept(k, z) {
            acc = neumaier(acc, exp_acc(d_of(z)));
            if first == NONE {
                first = k;
            }
            last = k;
        }
    }
    red_f[lid] = acc.x + acc.y;
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
        total = neumaier(total, red_f[j]);
        if any_first == NONE {
            any_first = cfirst[j];
        }
        if clast[j] != NONE {
            any_last = clast[j];
        }
    }
    let sum = total.x + total.y;
    // The most likely token is always kept, so Σ ≥ 1 (see sample.wgsl).
    var log_sum = log(sum);
    if total.x <= 2.0 {
        log_sum = log1p_acc(max((total.x - 1.0) + total.y, 0.0));
    }
    var pick = NONE;
    let goal = uniforms[P.step.uniforms + i * P.step.steps + P.step.s] * sum;
    if goal <= 0.0 {
        pick = any_first;
    } else {
        var pre = vec2<f32>(0.0, 0.0);
        for (var j = 0u; j < WG && pick == NONE; j++) {
            if goal < pre.x + (pre.y + red_f[j]) {
                var within = vec2<f32>(0.0, 0.0);
                let c0 = min(j * chunk, v);
                let c1 = min(c0 + chunk, v);
                for (var k = c0; k < c1; k++) {
                    let z = logits[base + k];
                    if kept(k, z) {
                        within = neumaier(within, exp_acc(d_of(z)));
                        if goal < pre.x + (pre.y + (within.x + within.y)) {
                            pick = k;
                            break;
                        }
                    }
                }
            }
            pre = neumaier(pre, red_f[j]);
        }
    }
    if pick == NONE {
        // Rounding left u·Σ above the last sum: the last kept token.
        pick = any_last;
    }
    var lp = bitcast<f32>(P.nan_bits);
    if pick == NONE {
        pick = 0u;
    } else {
        lp = d_of(logits[base + pick]) - log_sum;
    }
    let out = i * P.step.steps + P.step.s;
    tokens[P.step.tokens + out] = pick;
    logprobs[P.step.logprobs + out] = lp;
}
