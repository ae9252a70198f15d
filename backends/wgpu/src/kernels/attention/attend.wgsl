// One workgroup per (query row, head): scores of T keys at a time, an
// online softmax (running max, rescaled sums), the probability-weighted sum
// of the values. The layout file (decode.wgsl) says where queries, keys and
// values live and which leading keys are padding.

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let g = wg_index(wid, nwg);
    if g >= P.groups {
        return;
    }
    let x = ctx_of(g);
    let nk = ctx_nk(x);
    // The first key attended (keys before it are a prompt's left padding).
    let lo = ctx_lo(x);
    let hs = head_size();
    for (var d = t; d < hs; d += T) {
        sh_q[d] = q_at(x, d);
    }
    workgroupBarrier();
    let sp = split(t, hs);
    var acc: array<f32, MAXM>;
    var m = neg_inf();
    var l = 0.0;
    for (var c0 = lo; c0 < nk; c0 += T) {
        let j = c0 + t;
        var s = neg_inf();
        if j < nk {
            s = score(x, j) * P.scale;
        }
        // Every chunk holds a key (lo < nk), so mn is finite and alpha is 0 on the first.
        let mn = max(m, reduce_max(t, s));
        let alpha = exp_safe(m - mn);
        let e = exp_safe(s - mn);
        l = l * alpha + e;
        sh_w[t] = e;
        workgroupBarrier();
        for (var k = 0u; k < MAXM; k++) {
            acc[k] *= alpha;
        }
        if sp.slice < sp.ks {
            let cn = min(T, nk - c0);
            for (var c = sp.slice; c < cn; c += sp.ks) {
                let w = sh_w[c];
                for (var k = 0u; k < MAXM; k++) {
                    let d = sp.d0 + k * sp.ln;
                    if d < hs {
                        acc[k] += w * v_at(x, c0 + c, d);
                    }
                }
            }
        }
        m = mn;
    }
    let inv = 1.0 / reduce_sum(t, l);
    acc[0] = slice_total(t, sp, acc[0]);
    if sp.slice == 0u {
        for (var k = 0u; k < MAXM; k++) {
            let d = sp.d0 + k * sp.ln;
            if d < hs {
                put_out(x, d, acc[k] * inv);
            }
        }
    }
}
