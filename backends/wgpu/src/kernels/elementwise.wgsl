// Elementwise kernels: one thread per output element of a chunk.
// Parameters: P (`ElementwiseParams` of kernels/mod.rs, where the struct is
// declared); an operand is read at `operand_at(P.modeK, P.baseK, i)`.

fn elem_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return wg_index(wid, nwg) * 256u + lid;
}

// The index in its window of an operand's element for output element i of
// the chunk, given the operand's mode (0 full, 1 per row, 2 scalar) and
// window start.
fn operand_at(mode: u32, base: u32, i: u32) -> u32 {
    let g = P.first + i;
    var at = 0u;
    if mode == 0u {
        at = g;
    } else if mode == 1u {
        at = g / P.row;
    }
    return at - base;
}

fn out_at(i: u32) -> u32 {
    return P.first + i - P.out;
}
