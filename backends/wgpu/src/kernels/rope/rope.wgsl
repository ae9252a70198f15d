// Rotary position embeddings in the Hugging Face `rotate_half` layout, in
// place on q|k|v rows: in each of the first `heads` heads of a row (the
// query heads, then the key heads), element i of the first half pairs with
// element i of the second half and the pair turns by position·inv_freq(i):
//   a' = a·cos − b·sin,  b' = b·cos + a·sin
// (the backward turns by −sin: the transpose). One thread per pair.

// Parameters: P (`RopeParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> cos_t: array<f32>;
@group(0) @binding(1) var<storage, read> sin_t: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn rotate(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = wg_index(wid, nwg) * 256u + lid;
    if k >= P.pairs {
        return;
    }
    let i = k % P.half;
    let head = k / P.half % P.heads;
    let row = k / P.half / P.heads;
    var p = P.same;
    if P.per_row != 0u {
        p = positions[P.pos + row];
    }
    let a_at = P.x + row * P.width + head * 2u * P.half + i;
    let b_at = a_at + P.half;
    if p >= P.npos {
        x[a_at] = nan();
        x[b_at] = nan();
        return;
    }
    let c = cos_t[P.cos + p * P.half + i];
    var s = sin_t[P.sin + p * P.half + i];
    if P.inverse != 0u {
        s = -s;
    }
    let a = x[a_at];
    let b = x[b_at];
    x[a_at] = a * c - b * s;
    x[b_at] = b * c + a * s;
}
