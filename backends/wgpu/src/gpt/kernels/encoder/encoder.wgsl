// The embedding layer: out row r = wte[token of r] + wpe[position of r].
// params: 0 rows·c, 1 c, 2 out shift, 3 wte shift, 4 wpe shift,
// 5 tokens shift, 6 token stride, 7 positions shift (forward_rows) or the
// position itself (forward_same), 8 rows of wte, 9 rows of wpe.
// A token or position outside its table gives NaN, so that the error shows
// downstream. Without a position table (9 = 0) positions are ignored.

@group(0) @binding(0) var<storage, read> wte: array<f32>;
@group(0) @binding(1) var<storage, read> wpe: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn embed(i: u32, r: u32, j: u32, p: u32) {
    let c = prm(1u);
    let t = tokens[prm(5u) + r * prm(6u)];
    var v = nan();
    if prm(9u) == 0u {
        // No position table (rotary models): the token embedding alone.
        if t < prm(8u) {
            v = wte[prm(3u) + t * c + j];
        }
    } else if t < prm(8u) && p < prm(9u) {
        v = wte[prm(3u) + t * c + j] + wpe[prm(4u) + p * c + j];
    }
    out[prm(2u) + i] = v;
}

@compute @workgroup_size(256)
fn forward_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= prm(0u) {
        return;
    }
    let r = i / prm(1u);
    embed(i, r, i - r * prm(1u), positions[prm(7u) + r]);
}

@compute @workgroup_size(256)
fn forward_same(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= prm(0u) {
        return;
    }
    let r = i / prm(1u);
    embed(i, r, i - r * prm(1u), prm(7u));
}
