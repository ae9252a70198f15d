// The (9) counts of an evaluation in one workgroup: clipped tokens, then
// completion tokens (eligible) and kept tokens per bin code 0..3.

// Parameters: P (`CountsParams` of counts.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> clipped: array<f32>;
@group(0) @binding(1) var<storage, read> bins: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> keep: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var c: array<f32, 9>;
    for (var k = 0u; k < 9u; k = k + 1u) {
        c[k] = 0.0;
    }
    for (var i = lid; i < P.n; i = i + 256u) {
        c[0] = c[0] + clipped[i];
        let code = u32(bins[i]);
        if code < 4u {
            c[1u + code] = c[1u + code] + mask[i];
            c[5u + code] = c[5u + code] + keep[i];
        }
    }
    for (var k = 0u; k < 9u; k = k + 1u) {
        let total = reduce_lanes(c[k], lid, false);
        if lid == 0u {
            out[k] = total;
        }
    }
}
