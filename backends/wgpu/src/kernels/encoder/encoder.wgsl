// The embedding layer: out row r = wte[token of r] + wpe[position of r].
// A token or position outside its table gives NaN, so that the error shows
// downstream. Without a position table positions are ignored.

// Parameters: P (`EncoderParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> wte: array<f32>;
@group(0) @binding(1) var<storage, read> wpe: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

fn embed(i: u32, r: u32, j: u32, p: u32) {
    let c = P.c;
    let t = tokens[P.tokens + r * P.tok_stride];
    var v = nan();
    if P.npos == 0u {
        // No position table (rotary models): the token embedding alone.
        if t < P.vocab {
            v = wte[P.wte + t * c + j];
        }
    } else if t < P.vocab && p < P.npos {
        v = wte[P.wte + t * c + j] + wpe[P.wpe + p * c + j];
    }
    out[P.out + i] = v;
}

@compute @workgroup_size(256)
fn forward_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let r = i / P.c;
    embed(i, r, i - r * P.c, positions[P.positions + r]);
}

@compute @workgroup_size(256)
fn forward_same(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = wg_index(wid, nwg) * 256u + lid;
    if i >= P.n {
        return;
    }
    let r = i / P.c;
    embed(i, r, i - r * P.c, P.pos);
}
