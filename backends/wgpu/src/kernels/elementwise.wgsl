// Elementwise kernels: one thread per output element of a chunk.
// params: 0 = elements in this chunk, 1 = global index of its first element,
// 2 = row length of the output (for per-row operands), 3 = element index of
// the output window's start; operand k: 4 + 2k = mode (0 full, 1 per row,
// 2 scalar), 5 + 2k = element index of its window's start.

fn elem_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return wg_index(wid, nwg) * 256u + lid;
}

fn operand_at(k: u32, i: u32) -> u32 {
    let mode = prm(4u + 2u * k);
    let g = prm(1u) + i;
    var at = 0u;
    if mode == 0u {
        at = g;
    } else if mode == 1u {
        at = g / prm(2u);
    }
    return at - prm(5u + 2u * k);
}

fn out_at(i: u32) -> u32 {
    return prm(1u) + i - prm(3u);
}
