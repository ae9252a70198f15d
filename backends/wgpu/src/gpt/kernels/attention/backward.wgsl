// Training backward over the shared-prompt layout, three passes, no atomics:
//   delta: per (query, head), D = Σ_j P_j·(dout·v_j), parked in the first
//          element of the query's dq slice (overwritten by `dq`);
//   dkdv:  per (key, key/value head), dk = Σ_i dS_ij·q_i, dv = Σ_i P_ij·dout_i
//          over the query heads sharing the key head, then over the queries
//          that see the key, in `key_queries` order;
//   dq:    per (query, head), dq = Σ_j dS_ij·k_j,
// with dS_ij = P_ij·(dout_i·v_j − D_i)·scale.
// params: 0 dqkv shift, 1 dout shift, 2 probs shift, 3 qkv shift, 4.. the
// geometry (train_rows.wgsl), 13 H_kv.

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;

fn qkv_at(row: u32, off: u32) -> f32 {
    return qkv[prm(3u) + row * row_w() + off];
}

fn dout_at(row: u32, off: u32) -> f32 {
    return dout[prm(1u) + row * n_c() + off];
}

fn prob(row: u32, h: u32, j: u32) -> f32 {
    return probs[prm(2u) + (row * n_h() + h) * key_stride() + j];
}

fn delta_index(row: u32, h: u32) -> u32 {
    return prm(0u) + row * row_w() + h * head_size();
}

// dout_i·v_j of head h, dout_i's slice in sh_q.
fn dp_query(h: u32, key: u32) -> f32 {
    let hs = head_size();
    let base = prm(3u) + key * row_w() + v_off(h);
    var s = 0.0;
    for (var d = 0u; d < hs; d++) {
        s += sh_q[d] * qkv[base + d];
    }
    return s;
}

@compute @workgroup_size(64)
fn delta(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let g = wg_index(wid, nwg);
    if g >= n_groups() {
        return;
    }
    let row = g / n_h();
    let h = g % n_h();
    let hs = head_size();
    let q = query_keys(row);
    for (var d = t; d < hs; d += T) {
        sh_q[d] = dout_at(row, h * hs + d);
    }
    workgroupBarrier();
    var part = 0.0;
    for (var j = t; j < q.nk; j += T) {
        part += prob(row, h, j) * dp_query(h, key_row(q, j));
    }
    let dsum = reduce_sum(t, part);
    if t == 0u {
        dqkv[delta_index(row, h)] = dsum;
    }
}

@compute @workgroup_size(64)
fn dq(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let g = wg_index(wid, nwg);
    if g >= n_groups() {
        return;
    }
    let row = g / n_h();
    let h = g % n_h();
    let hs = head_size();
    let q = query_keys(row);
    let dsum = dqkv[delta_index(row, h)];
    for (var d = t; d < hs; d += T) {
        sh_q[d] = dout_at(row, h * hs + d);
    }
    workgroupBarrier();
    let sp = split(t, hs);
    var acc: array<f32, MAXM>;
    for (var c0 = 0u; c0 < q.nk; c0 += T) {
        let j = c0 + t;
        var w = 0.0;
        if j < q.nk {
            w = prob(row, h, j) * (dp_query(h, key_row(q, j)) - dsum) * qk_scale();
        }
        sh_w[t] = w;
        workgroupBarrier();
        if sp.slice < sp.ks {
            let cn = min(T, q.nk - c0);
            for (var c = sp.slice; c < cn; c += sp.ks) {
                let w = sh_w[c];
                let kr = key_row(q, c0 + c);
                for (var k = 0u; k < MAXM; k++) {
                    let d = sp.d0 + k * sp.ln;
                    if d < hs {
                        acc[k] += w * qkv_at(kr, k_off(h) + d);
                    }
                }
            }
        }
        workgroupBarrier();
    }
    acc[0] = slice_total(t, sp, acc[0]);
    // D (read above by every thread) lives where dq goes.
    storageBarrier();
    if sp.slice == 0u {
        for (var k = 0u; k < MAXM; k++) {
            let d = sp.d0 + k * sp.ln;
            if d < hs {
                dqkv[delta_index(row, h) + d] = acc[k];
            }
        }
    }
}

@compute @workgroup_size(64)
fn dkdv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let g = wg_index(wid, nwg);
    if g >= n_groups() / n_h() * n_kv() {
        return;
    }
    let r = g / n_kv();
    let kh = g % n_kv();
    let grp = n_h() / n_kv();
    let hs = head_size();
    let c = n_c();
    let kq = key_queries(r);
    // This key's v, for dout_i·v.
    for (var d = t; d < hs; d += T) {
        sh_q[d] = qkv_at(r, c + (n_kv() + kh) * hs + d);
    }
    workgroupBarrier();
    let sp = split(t, hs);
    var ak: array<f32, MAXM>;
    var av: array<f32, MAXM>;
    for (var hi = 0u; hi < grp; hi++) {
        let h = kh * grp + hi;
        for (var c0 = 0u; c0 < kq.nq; c0 += T) {
            let e = c0 + t;
            var w = 0.0;
            var pw = 0.0;
            var qr = 0u;
            if e < kq.nq {
                qr = query_row(kq, e);
                pw = prob(qr, h, kq.pidx);
                var dp = 0.0;
                for (var d = 0u; d < hs; d++) {
                    dp += sh_q[d] * dout_at(qr, h * hs + d);
                }
                w = pw * (dp - dqkv[delta_index(qr, h)]) * qk_scale();
            }
            sh_w[t] = w;
            sh_v[t] = pw;
            sh_i[t] = qr;
            workgroupBarrier();
            if sp.slice < sp.ks {
                let cn = min(T, kq.nq - c0);
                for (var i = sp.slice; i < cn; i += sp.ks) {
                    let w = sh_w[i];
                    let pw = sh_v[i];
                    let qr = sh_i[i];
                    for (var k = 0u; k < MAXM; k++) {
                        let d = sp.d0 + k * sp.ln;
                        if d < hs {
                            ak[k] += w * qkv_at(qr, h * hs + d);
                            av[k] += pw * dout_at(qr, h * hs + d);
                        }
                    }
                }
            }
            workgroupBarrier();
        }
    }
    ak[0] = slice_total(t, sp, ak[0]);
    av[0] = slice_total(t, sp, av[0]);
    if sp.slice == 0u {
        let base = prm(0u) + r * row_w() + c;
        for (var k = 0u; k < MAXM; k++) {
            let d = sp.d0 + k * sp.ln;
            if d < hs {
                dqkv[base + kh * hs + d] = ak[k];
                dqkv[base + (n_kv() + kh) * hs + d] = av[k];
            }
        }
    }
}
