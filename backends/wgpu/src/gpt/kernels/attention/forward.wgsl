// The training forward's side of `attend`: queries and keys are rows of one
// qkv (R, C + 2·H_kv·hs) in the shared-prompt layout; the probabilities are saved.
// params: 0 out shift, 1 probs shift, 2 qkv shift, 3 pad shift (NONE: no
// padding), 4.. the geometry (train_rows.wgsl).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
// u32 (B): the left padding of each prompt.
@group(0) @binding(3) var<storage, read> pads: array<u32>;
@group(0) @binding(6) var<storage, read_write> probs: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const SAVE: bool = true;

struct Ctx {
    row: u32,
    h: u32,
    keys: Qk,
}

fn ctx_of(g: u32) -> Ctx {
    let row = g / n_h();
    return Ctx(row, g % n_h(), query_keys(row));
}

fn ctx_nk(x: Ctx) -> u32 {
    return x.keys.nk;
}

// A prompt's padding keys are seen by no query but a padding query itself,
// which attends to its own key only (so that its row stays finite).
fn ctx_lo(x: Ctx) -> u32 {
    if prm(3u) == 0xffffffffu {
        return 0u;
    }
    let p = prm(5u);
    let bp = prm(8u);
    if x.row < bp {
        return min(pads[prm(3u) + x.row / p], x.row % p);
    }
    let n = (x.row - bp) / prm(6u);
    return pads[prm(3u) + n / prm(7u)];
}

fn q_at(x: Ctx, d: u32) -> f32 {
    return qkv[prm(2u) + x.row * row_w() + x.h * head_size() + d];
}

fn score(x: Ctx, j: u32) -> f32 {
    let hs = head_size();
    let base = prm(2u) + key_row(x.keys, j) * row_w() + k_off(x.h);
    var s = 0.0;
    for (var d = 0u; d < hs; d++) {
        s += sh_q[d] * qkv[base + d];
    }
    return s;
}

fn v_at(x: Ctx, j: u32, d: u32) -> f32 {
    return qkv[prm(2u) + key_row(x.keys, j) * row_w() + v_off(x.h) + d];
}

fn prob_at(x: Ctx, j: u32) -> u32 {
    return prm(1u) + (x.row * n_h() + x.h) * key_stride() + j;
}

fn save_raw(x: Ctx, j: u32, s: f32) {
    probs[prob_at(x, j)] = s;
}

fn load_raw(x: Ctx, j: u32) -> f32 {
    return probs[prob_at(x, j)];
}

fn save_prob(x: Ctx, j: u32, p: f32) {
    probs[prob_at(x, j)] = p;
}

fn put_out(x: Ctx, d: u32, v: f32) {
    out[prm(0u) + x.row * n_c() + x.h * head_size() + d] = v;
}
