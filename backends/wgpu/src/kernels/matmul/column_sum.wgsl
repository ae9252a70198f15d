// Column sums of a (rows, n) matrix in a fixed order: `partial` sums chunks
// of rows per column (4 row lanes per column, combined in lane order), and
// the shared finish (chunks/) sums the chunks' partials in chunk order. With
// one chunk, `partial` writes the result directly.

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
    let cell = chunk_cell(wg_index(wid, nwg), P.blocks, 64u, P.chunk, P.rows);
    // Workgroups beyond the grid (a 2D dispatch rounds up) have no chunk.
    if cell.chunk >= P.chunks {
        return;
    }
    let col = cell.col0 + lid % 64u;
    let lane = lid / 64u;
    var s = 0.0;
    if col < n {
        for (var r = cell.r0 + lane; r < cell.r1; r += 4u) {
            s += src[P.src + r * n + col];
        }
    }
    lanes[lid] = s;
    workgroupBarrier();
    if lane == 0u && col < n {
        var x = ((lanes[lid] + lanes[lid + 64u]) + lanes[lid + 128u]) + lanes[lid + 192u];
        let o = P.dst + cell.chunk * n + col;
        if P.accumulate != 0u {
            x = dst[o] + x;
        }
        dst[o] = x;
    }
}
