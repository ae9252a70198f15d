// The epilogue of a GEMM split over k: out = Σ_splits part [+ out] [+ bias],
// summing the splits in order so that the result is deterministic.
//
// Parameters: 0 m·n, 1 n, 2 splits, 3 shift of out, 4 shift of bias,
// 5 flags (1 accumulate, 2 bias).

@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias_buf: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_buf: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let mn = prm(0u);
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= mn {
        return;
    }
    var x = 0.0;
    for (var s = 0u; s < prm(2u); s++) {
        x += part[s * mn + i];
    }
    let flags = prm(5u);
    if (flags & 1u) != 0u {
        x = out_buf[prm(3u) + i] + x;
    }
    if (flags & 2u) != 0u {
        x = x + bias_buf[prm(4u) + i % prm(1u)];
    }
    out_buf[prm(3u) + i] = x;
}
