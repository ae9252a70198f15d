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
// CDF over the kept tokens in id order, the walk of step.wgsl that the
// unrestricted kernel (sample.wgsl) draws with, and ℓ is that of the
// renormalized kept distribution.

// Parameters: P (`TruncParams` of truncated.rs, where the struct is declared).

// Bindings: those of step.wgsl.

const WG: u32 = 256u;

var<workgroup> red_f: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;
var<workgroup> bcast: u32;

// This row (besides step.wgsl's): the max of z/τ, the cut.
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

// Only the kept tokens enter the sum.
fn cdf_term(k: u32) -> Term {
    let z = logits[base + k];
    if kept(k, z) {
        return Term(exp_acc(d_of(z)), true, true);
    }
    return Term(0.0, false, false);
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
        for (var j = 0u; j < WG && id == NONE; j++) {
            if before + red_u[j] >= m {
                var seen = before;
                let span = chunk_span(j);
                for (var k = span.x; k < span.y; k++) {
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
    step_row(i, lid);
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

    // The inverse CDF over the kept tokens in id order.
    cdf_chunks(lid);
    if lid != 0u {
        return;
    }
    let cdf = cdf_total();
    var pick = cdf_draw(i, cdf);
    var lp = bitcast<f32>(P.nan_bits);
    if pick == NONE {
        pick = 0u;
    } else {
        lp = d_of(logits[base + pick]) - cdf.log_sum;
    }
    step_write(i, pick, lp);
}
