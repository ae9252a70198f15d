// Pass 2 of the fused objective: ∂loss/∂z = g · (onehot(y) − p) written once,
// with p = exp((z − m)/τ − log Σe) for finite z (0 for masked −inf entries;
// the shift before the scale, as in the stats pass) and
// g = (∂loss/∂ℓ)/τ per row. Rows with g = 0 (padding, dropped sequences) are
// written as zeros without reading their logits. One thread per element
// (main_scalar) or per 4 elements of one row (main_vec4, V % 4 = 0).

// Parameters: P (`GradParams` of grad.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> z4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> tokens: array<f32>;
// Per row: the raw-logit max m, then log Σe (the stats pass's `shift`).
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> out4: array<vec4<f32>>;

fn grad1(x: f32, hot: bool, m: f32, ls: f32, gr: f32, inv_t: f32) -> f32 {
    var p = 0.0;
    if is_finite(x) {
        p = exp((x - m) * inv_t - ls);
    }
    return (select(0.0, 1.0, hot) - p) * gr;
}

@compute @workgroup_size(256)
fn main_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i4 = wg_index(wid, nwg) * 256u + lid;
    if i4 * 4u >= P.n {
        return;
    }
    let v = P.v;
    let local = i4 * 4u;
    let row = local / v;
    let col = local % v;
    let r = P.row0 + row;
    let gr = g[r];
    if gr == 0.0 && !is_nan(gr) {
        out4[P.out / 4u + i4] = vec4<f32>(0.0);
        return;
    }
    let x = z4[P.z / 4u + i4];
    let inv_t = P.inv_t;
    let m = shift[2u * r];
    let ls = shift[2u * r + 1u];
    let y = u32(tokens[r]);
    var o: vec4<f32>;
    o.x = grad1(x.x, col == y, m, ls, gr, inv_t);
    o.y = grad1(x.y, col + 1u == y, m, ls, gr, inv_t);
    o.z = grad1(x.z, col + 2u == y, m, ls, gr, inv_t);
    o.w = grad1(x.w, col + 3u == y, m, ls, gr, inv_t);
    out4[P.out / 4u + i4] = o;
}

@compute @workgroup_size(256)
fn main_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let v = P.v;
    let row = i / v;
    let r = P.row0 + row;
    let gr = g[r];
    if gr == 0.0 && !is_nan(gr) {
        out[P.out + i] = 0.0;
        return;
    }
    let hot = i % v == u32(tokens[r]);
    out[P.out + i] = grad1(z[P.z + i], hot, shift[2u * r], shift[2u * r + 1u], gr, P.inv_t);
}
