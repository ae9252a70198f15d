// Training forward, FlashAttention-2 style: a workgroup per (query tile,
// head). The tile's queries stay in workgroup memory; its keys stream
// through BS at a time, each block loaded once for the whole tile (its k,
// then its v, over the same floats); the softmax is online (running max m
// and sum l per query, the accumulator rescaled), so no score matrix
// reaches global memory. Writes out (R, C) and L = m + log l (R, H).
// pool (st: the odd row stride of tiles.wgsl): q [BT·st] | k, then v
// [BS·st] | scores, then weights [BT·BS].

// Parameters: P (`ForwardParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
// u32 (B): the left padding of each prompt.
@group(0) @binding(3) var<storage, read> pads: array<u32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let q = query_tile(wg_index(wid, nwg));
    if !q.valid {
        return;
    }
    let x = q.x;
    let h = q.h;
    let hs = hs();
    let st = stride();
    let w = row_w();
    let qo = q.qo;
    let ko = q.ko;
    let vo = q.vo;
    let skv = BT * st;
    let sp = skv + BS * st;
    for (var e = t; e < x.len * hs; e += WG) {
        pool[at(e)] = qkv[P.qkv + (x.row0 + e / hs) * w + qo + e % hs];
    }
    // Thread t serves query qi's dims lane, lane + tpq, ...; thread i < BT
    // also keeps query i's m and l.
    let tpq = WG / BT;
    let qi = t / tpq;
    let lane = t % tpq;
    var acc: array<f32, MAXR>;
    var m = NEG;
    var l = 0.0;
    let nk = tile_keys(x);
    for (var j0 = 0u; j0 < nk; j0 += BS) {
        let bn = min(BS, nk - j0);
        workgroupBarrier();
        load_keys(skv, x, j0, bn, ko, t);
        workgroupBarrier();
        for (var e = t; e < BT * bn; e += WG) {
            let i = e / bn;
            let j = e % bn;
            var s = NEG;
            if i < x.len && sees(x.row0 + i, key_row(x, j0 + j)) {
                s = pool_dot(i * st, skv + j * st) * P.geo.scale;
            }
            pool[sp + i * BS + j] = s;
        }
        workgroupBarrier();
        if t < BT {
            var alpha = 0.0;
            if t < x.len {
                var mb = m;
                for (var j = 0u; j < bn; j++) {
                    mb = max(mb, pool[sp + t * BS + j]);
                }
                // alpha rescales what the earlier blocks summed (nothing
                // while m is still NEG).
                if m != NEG {
                    alpha = exp(m - mb);
                }
                var sum = 0.0;
                for (var j = 0u; j < bn; j++) {
                    let s = pool[sp + t * BS + j];
                    var e = 0.0;
                    if s != NEG {
                        e = exp(s - mb);
                    }
                    pool[sp + t * BS + j] = e;
                    sum += e;
                }
                l = l * alpha + sum;
                m = mb;
            }
            sa[t] = alpha;
        }
        workgroupBarrier();
        load_keys(skv, x, j0, bn, vo, t);
        workgroupBarrier();
        if qi < x.len {
            let a = sa[qi];
            for (var k = 0u; k < MAXR; k++) {
                let d = lane + k * tpq;
                if d < hs {
                    var o = acc[k] * a;
                    for (var j = 0u; j < bn; j++) {
                        o += pool[sp + qi * BS + j] * pool[skv + j * st + d];
                    }
                    acc[k] = o;
                }
            }
        }
    }
    if t < x.len {
        sb[t] = l;
        lse[P.lse + (x.row0 + t) * P.geo.h + h] = m + log(l);
    }
    workgroupBarrier();
    if qi < x.len {
        let inv = 1.0 / sb[qi];
        for (var k = 0u; k < MAXR; k++) {
            let d = lane + k * tpq;
            if d < hs {
                out[P.out + (x.row0 + qi) * P.geo.c + qo + d] = acc[k] * inv;
            }
        }
    }
}
