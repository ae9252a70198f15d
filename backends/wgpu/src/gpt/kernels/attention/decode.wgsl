// The generation step's layout for `attend`: row i's query (step_qkv row i)
// sees the P prompt rows of its prompt i / G in `prefix`, then the first ns
// rows of its own cache (rows i·steps ..). Nothing is saved.
// params: 0 out shift, 1 step shift, 2 prefix shift, 3 cache shift,
// 4 workgroups (n·H), 5 P, 6 G, 7 steps, 8 ns, 9 C, 10 H, 11 pad shift
// (NONE: no padding), 12 scale (f32 bits), 13 H_kv.

@group(0) @binding(0) var<storage, read> step_qkv: array<f32>;
@group(0) @binding(1) var<storage, read> prefix: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<f32>;
// u32 (B): the left padding of each prompt, whose keys no query sees.
@group(0) @binding(3) var<storage, read> pads: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn n_groups() -> u32 {
    return prm(4u);
}

fn n_c() -> u32 {
    return prm(9u);
}

fn n_h() -> u32 {
    return prm(10u);
}

fn head_size() -> u32 {
    return prm(9u) / prm(10u);
}

fn qk_scale() -> f32 {
    return prmf(12u);
}

struct Ctx {
    row: u32,
    h: u32,
}

fn ctx_of(g: u32) -> Ctx {
    return Ctx(g / n_h(), g % n_h());
}

fn ctx_nk(x: Ctx) -> u32 {
    return prm(5u) + prm(8u);
}

fn ctx_lo(x: Ctx) -> u32 {
    if prm(11u) == 0xffffffffu {
        return 0u;
    }
    return pads[prm(11u) + x.row / prm(6u)];
}

fn q_at(x: Ctx, d: u32) -> f32 {
    return step_qkv[prm(1u) + x.row * row_w() + x.h * head_size() + d];
}

// Element `off` of key j's q|k|v row.
fn key_elem(x: Ctx, j: u32, off: u32) -> f32 {
    let p = prm(5u);
    let c3 = row_w();
    if j < p {
        return prefix[prm(2u) + (x.row / prm(6u) * p + j) * c3 + off];
    }
    return cache[prm(3u) + (x.row * prm(7u) + j - p) * c3 + off];
}

fn score(x: Ctx, j: u32) -> f32 {
    let hs = head_size();
    let p = prm(5u);
    let c3 = row_w();
    var base = 0u;
    var s = 0.0;
    if j < p {
        base = prm(2u) + (x.row / prm(6u) * p + j) * c3 + k_off(x.h);
        for (var d = 0u; d < hs; d++) {
            s += sh_q[d] * prefix[base + d];
        }
    } else {
        base = prm(3u) + (x.row * prm(7u) + j - p) * c3 + k_off(x.h);
        for (var d = 0u; d < hs; d++) {
            s += sh_q[d] * cache[base + d];
        }
    }
    return s;
}

fn v_at(x: Ctx, j: u32, d: u32) -> f32 {
    return key_elem(x, j, v_off(x.h) + d);
}

fn put_out(x: Ctx, d: u32, v: f32) {
    out[prm(0u) + x.row * n_c() + x.h * head_size() + d] = v;
}
