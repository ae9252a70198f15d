// The ordered end of a chunked sum (chunks/mod.rs): thread i adds column i
// of the partials up over the chunks, chunk 0 first, so that the result
// does not depend on the device.

// Parameters: P (`FinishParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

// P.flags: the two orders of `Combine` (mod.rs), which round differently,
// and the bias.
const ADD_EACH: u32 = 1u;
const ADD_TOTAL: u32 = 2u;
const BIAS: u32 = 4u;

@compute @workgroup_size(256)
fn finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.cols {
        return;
    }
    let o = P.out + i;
    var x = 0.0;
    if (P.flags & ADD_EACH) != 0u {
        x = out[o];
    }
    for (var q = 0u; q < P.chunks; q++) {
        x += part[P.part + q * P.stride + i];
    }
    if (P.flags & ADD_TOTAL) != 0u {
        x = out[o] + x;
    }
    if (P.flags & BIAS) != 0u {
        x = x + bias[P.bias + i % P.bias_len];
    }
    out[o] = x;
}
