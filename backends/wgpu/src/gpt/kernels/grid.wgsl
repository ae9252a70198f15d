// The linear index of a workgroup of a 2D dispatch (workgroups beyond
// 65,535 spill into y), for kernels whose parameters are a struct of their
// own at binding 15 instead of common.wgsl's positional block.
fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}
