// Column sums of a (rows, n) matrix in a fixed order: `partial` sums chunks
// of rows per column (4 row lanes per column, combined in lane order), and
// `finish` sums the chunks' partials in chunk order. With one chunk,
// `partial` writes the result directly.

// Parameters: P (`ColumnSumParams` of mod.rs, where the struct is declared).

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(7) var<storage, read_write> dst: array<f32>;

var<workgroup> lanes: array<f32, 256>;

@compute @workgroup_size(256)
fn partial(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = P.n;
    let wg = wg_index(wid, nwg);
    let chunk = wg / P.blocks;
    // Workgroups beyond the grid (a 2D dispatch rounds up) have no chunk.
    if chunk >= P.chunks {
        return;
    }
    let col = (wg % P.blocks) * 64u + lid % 64u;
    let lane = lid / 64u;
    let r0 = chunk * P.chunk;
    let r1 = min(P.rows, r0 + P.chunk);
    var s = 0.0;
    if col < n {
        for (var r = r0 + lane; r < r1; r += 4u) {
            s += src[P.src + r * n + col];
        }
    }
    lanes[lid] = s;
    workgroupBarrier();
    if lane == 0u && col < n {
        var x = ((lanes[lid] + lanes[lid + 64u]) + lanes[lid + 128u]) + lanes[lid + 192u];
        let o = P.dst + chunk * n + col;
        if P.accumulate != 0u {
            x = dst[o] + x;
        }
        dst[o] = x;
    }
}

@compute @workgroup_size(256)
fn finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = P.n;
    let col = wg_index(wid, nwg) * 256u + lid;
    if col >= n {
        return;
    }
    var x = 0.0;
    for (var c = 0u; c < P.chunks; c++) {
        x += src[c * n + col];
    }
    if P.accumulate != 0u {
        x = dst[P.dst + col] + x;
    }
    dst[P.dst + col] = x;
}
