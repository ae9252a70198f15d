// Training backward, FlashAttention-2 style, deterministic (no atomics):
// P_ij = exp(s_ij − L_i) is recomputed from q, k and the forward's L,
// dS_ij = P_ij·(dout_i·v_j − D_i)·scale with D_i = dout_i·out_i (delta.wgsl).
//   dkdv: a workgroup per (key tile, key/value head) keeps its keys' k, v
//         and sums dv = Σ_i P_ij·dout_i, dk = Σ_i dS_ij·q_i over the query
//         heads sharing the key head, then over the queries that see the
//         keys in a fixed order (a prompt key: its prompt's later rows, then
//         every completion row of its G samples; a completion key: the later
//         rows of its own sample), BS queries at a time;
//   dq:   a workgroup per (query tile, head) sums dq = Σ_j dS_ij·k_j over
//         the tile's keys, BS at a time.

// Parameters: P (`BackwardParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
// u32 (B): the left padding of each prompt.
@group(0) @binding(3) var<storage, read> pads: array<u32>;
// (R, H): D_i per query and head.
@group(0) @binding(4) var<storage, read> dsum: array<f32>;
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;

// pool: dout [BT·st] | q [BT·st] | v, then k [BS·st] | dP, then dS [BT·BS];
// sa: L, sb: D of the tile's queries.
@compute @workgroup_size(64)
fn dq(
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
    let sq = BT * st;
    let skv = 2u * BT * st;
    let sp = skv + BS * st;
    for (var e = t; e < x.len * hs; e += WG) {
        let row = x.row0 + e / hs;
        pool[at(e)] = dout[P.dout + row * P.geo.c + qo + e % hs];
        pool[sq + at(e)] = qkv[P.qkv + row * w + qo + e % hs];
    }
    if t < x.len {
        sa[t] = lse[P.lse + (x.row0 + t) * P.geo.h + h];
        sb[t] = dsum[P.dsum + (x.row0 + t) * P.geo.h + h];
    }
    let tpq = WG / BT;
    let qi = t / tpq;
    let lane = t % tpq;
    var acc: array<f32, MAXR>;
    let nk = tile_keys(x);
    for (var j0 = 0u; j0 < nk; j0 += BS) {
        let bn = min(BS, nk - j0);
        workgroupBarrier();
        load_keys(skv, x, j0, bn, vo, t);
        workgroupBarrier();
        for (var e = t; e < BT * bn; e += WG) {
            let i = e / bn;
            let j = e % bn;
            var dp = 0.0;
            if i < x.len {
                dp = pool_dot(i * st, skv + j * st);
            }
            pool[sp + i * BS + j] = dp;
        }
        workgroupBarrier();
        load_keys(skv, x, j0, bn, ko, t);
        workgroupBarrier();
        for (var e = t; e < BT * bn; e += WG) {
            let i = e / bn;
            let j = e % bn;
            var ds = 0.0;
            if i < x.len && sees(x.row0 + i, key_row(x, j0 + j)) {
                let p = exp(pool_dot(sq + i * st, skv + j * st) * P.geo.scale - sa[i]);
                ds = p * (pool[sp + i * BS + j] - sb[i]) * P.geo.scale;
            }
            pool[sp + i * BS + j] = ds;
        }
        workgroupBarrier();
        if qi < x.len {
            for (var k = 0u; k < MAXR; k++) {
                let d = lane + k * tpq;
                if d < hs {
                    var a = acc[k];
                    for (var j = 0u; j < bn; j++) {
                        a += pool[sp + qi * BS + j] * pool[skv + j * st + d];
                    }
                    acc[k] = a;
                }
            }
        }
    }
    if qi < x.len {
        for (var k = 0u; k < MAXR; k++) {
            let d = lane + k * tpq;
            if d < hs {
                dqkv[P.dqkv + (x.row0 + qi) * w + qo + d] = acc[k];
            }
        }
    }
}

// The queries that see a key tile, in summation order: rows a0 .. a0 + an,
// then b0 .. b0 + bn.
struct Queries {
    a0: u32,
    an: u32,
    b0: u32,
    bn: u32,
}

fn tile_queries(x: Tile) -> Queries {
    if x.prompt {
        let gs = P.geo.g * P.geo.s;
        return Queries(x.row0, (x.seg + 1u) * P.geo.p - x.row0, P.geo.bp + x.seg * gs, gs);
    }
    return Queries(x.row0, P.geo.bp + (x.seg + 1u) * P.geo.s - x.row0, 0u, 0u);
}

fn query_row(q: Queries, e: u32) -> u32 {
    if e < q.an {
        return q.a0 + e;
    }
    return q.b0 + e - q.an;
}

// pool: k [BT·st] | v [BT·st] | q [BS·st] | dout [BS·st] | P [BS·BT] |
// dS [BS·BT]; sa: L, sb: D of the block's queries.
@compute @workgroup_size(64)
fn dkdv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let g = wg_index(wid, nwg);
    if g >= n_tiles() * P.geo.kv {
        return;
    }
    let x = tile_of(g / P.geo.kv);
    let kh = g % P.geo.kv;
    let hs = hs();
    let st = stride();
    let w = row_w();
    let sv = BT * st;
    let sq = 2u * BT * st;
    let sd = sq + BS * st;
    let sp = sd + BS * st;
    let ss = sp + BS * BT;
    for (var e = t; e < x.len * hs; e += WG) {
        let row = x.row0 + e / hs;
        pool[at(e)] = qkv[P.qkv + row * w + k_off(kh) + e % hs];
        pool[sv + at(e)] = qkv[P.qkv + row * w + v_off(kh) + e % hs];
    }
    let qs = tile_queries(x);
    let nq = qs.an + qs.bn;
    // Thread t serves key kj's dims lane, lane + tpk, ...
    let tpk = WG / BT;
    let kj = t / tpk;
    let lane = t % tpk;
    var ak: array<f32, MAXR>;
    var av: array<f32, MAXR>;
    let grp = P.geo.h / P.geo.kv;
    for (var hi = 0u; hi < grp; hi++) {
        let h = kh * grp + hi;
        let qo = h * hs;
        for (var e0 = 0u; e0 < nq; e0 += BS) {
            let bn = min(BS, nq - e0);
            workgroupBarrier();
            for (var e = t; e < bn * hs; e += WG) {
                let row = query_row(qs, e0 + e / hs);
                pool[sq + at(e)] = qkv[P.qkv + row * w + qo + e % hs];
                pool[sd + at(e)] = dout[P.dout + row * P.geo.c + qo + e % hs];
            }
            if t < bn {
                let row = query_row(qs, e0 + t);
                sa[t] = lse[P.lse + row * P.geo.h + h];
                sb[t] = dsum[P.dsum + row * P.geo.h + h];
            }
            workgroupBarrier();
            for (var e = t; e < bn * BT; e += WG) {
                let i = e / BT;
                let j = e % BT;
                var p = 0.0;
                var ds = 0.0;
                if j < x.len && sees(query_row(qs, e0 + i), x.row0 + j) {
                    p = exp(pool_dot(sq + i * st, j * st) * P.geo.scale - sa[i]);
                    ds = p * (pool_dot(sd + i * st, sv + j * st) - sb[i]) * P.geo.scale;
                }
                pool[sp + e] = p;
                pool[ss + e] = ds;
            }
            workgroupBarrier();
            if kj < x.len {
                for (var k = 0u; k < MAXR; k++) {
                    let d = lane + k * tpk;
                    if d < hs {
                        var a = ak[k];
                        var b = av[k];
                        for (var i = 0u; i < bn; i++) {
                            a += pool[ss + i * BT + kj] * pool[sq + i * st + d];
                            b += pool[sp + i * BT + kj] * pool[sd + i * st + d];
                        }
                        ak[k] = a;
                        av[k] = b;
                    }
                }
            }
        }
    }
    if kj < x.len {
        let base = P.dqkv + (x.row0 + kj) * w;
        for (var k = 0u; k < MAXR; k++) {
            let d = lane + k * tpk;
            if d < hs {
                dqkv[base + k_off(kh) + d] = ak[k];
                dqkv[base + v_off(kh) + d] = av[k];
            }
        }
    }
}
