// Workgroup helpers of the generation step (decode.wgsl, attend.wgsl): T
// threads serve one (row, head); reductions are fixed trees, so every result is deterministic.

const T: u32 = 64u;
// Head dims one thread accumulates: head sizes up to MAXM·T.
const MAXM: u32 = 4u;

var<workgroup> sh_q: array<f32, 256>;
var<workgroup> sh_w: array<f32, T>;
var<workgroup> sh_r: array<f32, T>;

fn reduce_max(t: u32, x: f32) -> f32 {
    sh_r[t] = x;
    workgroupBarrier();
    for (var st = T / 2u; st > 0u; st = st / 2u) {
        if t < st {
            sh_r[t] = max(sh_r[t], sh_r[t + st]);
        }
        workgroupBarrier();
    }
    let r = sh_r[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(t: u32, x: f32) -> f32 {
    sh_r[t] = x;
    workgroupBarrier();
    for (var st = T / 2u; st > 0u; st = st / 2u) {
        if t < st {
            sh_r[t] = sh_r[t] + sh_r[t + st];
        }
        workgroupBarrier();
    }
    let r = sh_r[0];
    workgroupBarrier();
    return r;
}

// How the threads share a weighted sum of head vectors over items (keys or
// queries): `ks` slices of `ln` lanes; lane d0 of a slice owns dims
// d0 + m·ln and the slice owns items slice, slice + ks, ... Consecutive
// lanes read consecutive dims of one row (coalesced).
struct Split {
    ln: u32,
    ks: u32,
    slice: u32,
    d0: u32,
}

fn split(t: u32, hs: u32) -> Split {
    let ln = min(hs, T);
    return Split(ln, T / ln, t / ln, t % ln);
}

// Sum over the slices of dim d0's accumulator: valid on the threads of slice 0.
// (With ks = 1 it is the thread's own value.)
fn slice_total(t: u32, sp: Split, x: f32) -> f32 {
    sh_r[t] = select(0.0, x, sp.slice < sp.ks);
    workgroupBarrier();
    var s = 0.0;
    if sp.slice == 0u {
        for (var k = 0u; k < sp.ks; k++) {
            s += sh_r[sp.d0 + k * sp.ln];
        }
    }
    workgroupBarrier();
    return s;
}

// Grouped-query attention: the q|k|v row holds H query heads, then H_kv key
// heads, then H_kv value heads, and query head h reads key/value head
// h / (H / H_kv), with H_kv = P.kv (= H without GQA); the layout file
// (decode.wgsl) defines head_size.

// Width of one q|k|v row: C + 2·H_kv·hs.
fn row_w() -> u32 {
    return P.c + 2u * P.kv * head_size();
}

fn kv_head(h: u32) -> u32 {
    return h / (P.h / P.kv);
}

// Offsets of query head h's key and value inside a q|k|v row.
fn k_off(h: u32) -> u32 {
    return P.c + kv_head(h) * head_size();
}

fn v_off(h: u32) -> u32 {
    return P.c + (P.kv + kv_head(h)) * head_size();
}
