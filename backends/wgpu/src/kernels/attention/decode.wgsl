// The generation step's layout for `attend`: row i's query (step_qkv row i)
// sees the P.p prompt rows of its prompt i / P.g in `prefix`, then the
// first P.ns rows of its own cache (rows i·steps ..). Nothing is saved.

// Parameters: P (`DecodeParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> step_qkv: array<f32>;
@group(0) @binding(1) var<storage, read> prefix: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<f32>;
// u32 (B): the left padding of each prompt, whose keys no query sees.
@group(0) @binding(3) var<storage, read> pads: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn head_size() -> u32 {
    return P.c / P.h;
}

struct Ctx {
    row: u32,
    h: u32,
}

fn ctx_of(g: u32) -> Ctx {
    return Ctx(g / P.h, g % P.h);
}

fn ctx_nk(x: Ctx) -> u32 {
    return P.p + P.ns;
}

fn ctx_lo(x: Ctx) -> u32 {
    if P.pads == 0xffffffffu {
        return 0u;
    }
    return pads[P.pads + x.row / P.g];
}

fn q_at(x: Ctx, d: u32) -> f32 {
    return step_qkv[P.step_qkv + x.row * row_w() + x.h * head_size() + d];
}

// Element `off` of key j's q|k|v row.
fn key_elem(x: Ctx, j: u32, off: u32) -> f32 {
    let p = P.p;
    let c3 = row_w();
    if j < p {
        return prefix[P.prefix + (x.row / P.g * p + j) * c3 + off];
    }
    return cache[P.cache + (x.row * P.steps + j - p) * c3 + off];
}

fn score(x: Ctx, j: u32) -> f32 {
    let hs = head_size();
    let p = P.p;
    let c3 = row_w();
    var base = 0u;
    var s = 0.0;
    if j < p {
        base = P.prefix + (x.row / P.g * p + j) * c3 + k_off(x.h);
        for (var d = 0u; d < hs; d++) {
            s += sh_q[d] * prefix[base + d];
        }
    } else {
        base = P.cache + (x.row * P.steps + j - p) * c3 + k_off(x.h);
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
    out[P.out + x.row * P.c + x.h * head_size() + d] = v;
}
