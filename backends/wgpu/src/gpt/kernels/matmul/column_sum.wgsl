// Column sums of a (rows, n) matrix in a fixed order: `partial` sums chunks
// of rows per column (4 row lanes per column, combined in lane order), and
// `finish` sums the chunks' partials in chunk order. With one chunk,
// `partial` writes the result directly.

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(7) var<storage, read_write> dst: array<f32>;

var<workgroup> lanes: array<f32, 256>;

// Parameters: 0 rows, 1 n, 2 shift of src, 3 shift of dst, 4 rows per
// chunk, 5 column blocks of 64, 6 accumulate into dst (0/1), 7 chunks.
@compute @workgroup_size(256)
fn partial(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = prm(1u);
    let wg = wg_index(wid, nwg);
    let chunk = wg / prm(5u);
    // Workgroups beyond the grid (a 2D dispatch rounds up) have no chunk.
    if chunk >= prm(7u) {
        return;
    }
    let col = (wg % prm(5u)) * 64u + lid % 64u;
    let lane = lid / 64u;
    let r0 = chunk * prm(4u);
    let r1 = min(prm(0u), r0 + prm(4u));
    var s = 0.0;
    if col < n {
        for (var r = r0 + lane; r < r1; r += 4u) {
            s += src[prm(2u) + r * n + col];
        }
    }
    lanes[lid] = s;
    workgroupBarrier();
    if lane == 0u && col < n {
        var x = ((lanes[lid] + lanes[lid + 64u]) + lanes[lid + 128u]) + lanes[lid + 192u];
        let o = prm(3u) + chunk * n + col;
        if prm(6u) != 0u {
            x = dst[o] + x;
        }
        dst[o] = x;
    }
}

// Parameters: 0 chunks, 1 n, 2 shift of dst, 3 accumulate into dst (0/1).
@compute @workgroup_size(256)
fn finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = prm(1u);
    let col = wg_index(wid, nwg) * 256u + lid;
    if col >= n {
        return;
    }
    var x = 0.0;
    for (var c = 0u; c < prm(0u); c++) {
        x += src[c * n + col];
    }
    if prm(3u) != 0u {
        x = dst[prm(2u) + col] + x;
    }
    dst[prm(2u) + col] = x;
}
