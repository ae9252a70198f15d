// Softmax cross-entropy of rows of logits: one workgroup per row, a parallel
// max then a parallel sum (tree reductions in workgroup memory, so the
// result does not depend on scheduling), then the gradient.
// params: 0 rows, 1 v, 2 shift of dlogits, 3 shift of loss, 4 shift of
// logits, 5 shift of targets, 6 scale (f32 bits).

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> dlogits: array<f32>;

const WG: u32 = 64u;

var<workgroup> red: array<f32, 64>;
var<workgroup> red2: array<f32, 64>;

// log(1 + x) for x ≥ 0, accurate near 0 where log(1 + x) is not (the
// rounding of 1 + x, and WGSL only bounds log's absolute error near 1):
// 2·atanh(t), t = x/(2 + x) ≤ 1/3, by its series up to t^19.
fn log1p_acc(x: f32) -> f32 {
    if !(x <= 1.0) {
        return log(1.0 + x);
    }
    let t = x / (2.0 + x);
    let t2 = t * t;
    var s = 1.0 / 19.0;
    for (var k = 17.0; k > 0.0; k -= 2.0) {
        s = 1.0 / k + t2 * s;
    }
    return 2.0 * t * s;
}

fn reduce_max(lid: u32) -> f32 {
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red[lid] = max_nan(red[lid], red[lid + stride]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sums(lid: u32) -> vec2<f32> {
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red[lid] = red[lid] + red[lid + stride];
            red2[lid] = red2[lid] + red2[lid + stride];
        }
        workgroupBarrier();
    }
    return vec2<f32>(red[0], red2[0]);
}

@compute @workgroup_size(64)
fn softmax_xent(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wg_index(wid, nwg);
    if r >= prm(0u) {
        return;
    }
    let v = prm(1u);
    let base = prm(4u) + r * v;
    var mx = neg_inf();
    for (var k = lid; k < v; k += WG) {
        mx = max_nan(mx, logits[base + k]);
    }
    red[lid] = mx;
    workgroupBarrier();
    let m = reduce_max(lid);
    // Σ exp(z − m) = 1 + rest, rest leaving out one maximum (its term is
    // exactly 1): log1p(rest) keeps the small losses of confident rows
    // accurate, where log of a sum near 1 loses them.
    var other = 0.0;
    var at_max = 0.0;
    for (var k = lid; k < v; k += WG) {
        let z = logits[base + k];
        if z == m {
            at_max += 1.0;
        } else {
            other += exp_safe(z - m);
        }
    }
    red[lid] = other;
    red2[lid] = at_max;
    workgroupBarrier();
    let sums = reduce_sums(lid);
    let rest = sums.x + (sums.y - 1.0);
    let sum = 1.0 + rest;
    let y = targets[prm(5u) + r];
    let scale = prmf(6u);
    let out = prm(2u) + r * v;
    // p = exp(z − m) / sum rather than exp(z − lse): z − m is exact where
    // the logits are close, z − lse is rounded at the magnitude of lse.
    for (var k = lid; k < v; k += WG) {
        let z = logits[base + k];
        var p = exp_safe(z - m) / sum;
        if k == y {
            // For a maximal target p − 1 = −rest/sum, without cancellation.
            if z == m {
                p = -rest / sum;
            } else {
                p -= 1.0;
            }
        }
        dlogits[out + k] = p * scale;
    }
    if lid == 0u {
        if y < v {
            loss[prm(3u) + r] = (m - logits[base + y]) + log1p_acc(rest);
        } else {
            loss[prm(3u) + r] = nan();
        }
    }
}
