// The tiled GEMM shared by the tile configurations (gemm128.wgsl,
// gemm64.wgsl): out (m, n) = op(a) (m, k) · op(b) (k, n), with an epilogue
// that accumulates and adds a bias, or writes one k-split's raw partial.
//
// A configuration defines TILE (the square output tile of a workgroup), BK
// (the k-depth of one shared tile, a multiple of 8, BK·TILE = 4·256 so that
// each thread moves 4 elements of each operand), the shared tiles a_sh
// and b_sh, and SV (the vec4 stride of one k-row of a
// shared tile: TILE / 4 + 1, the padding spreads transposed stores over the
// memory banks). Shared tiles hold op(a) as [k][row] and op(b) as [k][col],
// so that the inner loop reads both operands as vec4 along the output.

// Parameters: P (`GemmParams` of mod.rs, where the struct is declared).

// 1 when a is stored (k, m); 0 when (m, k).
override A_T: u32 = 0u;
// 1 when b is stored (n, k); 0 when (k, n).
override B_T: u32 = 0u;

@group(0) @binding(0) var<storage, read> a_buf: array<f32>;
@group(0) @binding(1) var<storage, read> b_buf: array<f32>;
@group(0) @binding(2) var<storage, read> bias_buf: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_buf: array<f32>;

// The workgroup's output tile and k-range.
struct Tile {
    row0: u32,
    col0: u32,
    k0: u32,
    k1: u32,
    split: u32,
}

fn tile_of(wg: u32) -> Tile {
    let per_split = P.tiles;
    let split = wg / per_split;
    let t = wg % per_split;
    let k0 = split * P.split_k;
    return Tile((t / P.tiles_n) * TILE, (t % P.tiles_n) * TILE, k0, min(P.k, k0 + P.split_k), split);
}

// (k, mn) inside the tile of element i (0..4) of thread lid. Threads run
// along the operand's contiguous dimension, so that a warp's loads coalesce.
fn tile_elem(k_contiguous: bool, lid: u32, i: u32) -> vec2<u32> {
    if k_contiguous {
        return vec2<u32>(lid % BK, lid / BK + (256u / BK) * i);
    }
    return vec2<u32>(lid / TILE + (256u / TILE) * i, lid % TILE);
}

// Element i of this thread's part of the op(a) tile at k-offset kt (zero
// outside the matrix or the split). Loops with constant trip counts are
// written out by hand throughout: the loop counters that shader translators
// inject keep drivers from unrolling them.
fn a_elem(t: Tile, kt: u32, lid: u32, i: u32) -> f32 {
    let kc = A_T == 0u;
    let e = tile_elem(kc, lid, i);
    let r = t.row0 + e.y;
    let kk = kt + e.x;
    if r < P.m && kk < t.k1 {
        return a_buf[P.a + select(kk * P.m + r, r * P.k + kk, kc)];
    }
    return 0.0;
}

fn b_elem(t: Tile, kt: u32, lid: u32, i: u32) -> f32 {
    let kc = B_T == 1u;
    let e = tile_elem(kc, lid, i);
    let c = t.col0 + e.y;
    let kk = kt + e.x;
    if c < P.n && kk < t.k1 {
        return b_buf[P.b + select(kk * P.n + c, c * P.k + kk, kc)];
    }
    return 0.0;
}

fn load_a(t: Tile, kt: u32, lid: u32) -> vec4<f32> {
    return vec4<f32>(a_elem(t, kt, lid, 0u), a_elem(t, kt, lid, 1u), a_elem(t, kt, lid, 2u), a_elem(t, kt, lid, 3u));
}

fn load_b(t: Tile, kt: u32, lid: u32) -> vec4<f32> {
    return vec4<f32>(b_elem(t, kt, lid, 0u), b_elem(t, kt, lid, 1u), b_elem(t, kt, lid, 2u), b_elem(t, kt, lid, 3u));
}

// Stores this thread's loaded elements into the shared tiles.
fn stage_elem(lid: u32, i: u32, a: f32, b: f32) {
    let ea = tile_elem(A_T == 0u, lid, i);
    a_sh[ea.x * SV + ea.y / 4u][ea.y % 4u] = a;
    let eb = tile_elem(B_T == 1u, lid, i);
    b_sh[eb.x * SV + eb.y / 4u][eb.y % 4u] = b;
}

fn stage(a: vec4<f32>, b: vec4<f32>, lid: u32) {
    stage_elem(lid, 0u, a.x, b.x);
    stage_elem(lid, 1u, a.y, b.y);
    stage_elem(lid, 2u, a.z, b.z);
    stage_elem(lid, 3u, a.w, b.w);
}

// Writes out[row, col] (when inside the matrix).
fn store1(t: Tile, row: u32, col: u32, v: f32) {
    let m = P.m;
    let n = P.n;
    if row >= m || col >= n {
        return;
    }
    let flags = P.flags;
    let o = row * n + col;
    if (flags & 4u) != 0u {
        out_buf[t.split * m * n + o] = v;
        return;
    }
    var x = v;
    if (flags & 1u) != 0u {
        x = out_buf[P.out + o] + x;
    }
    if (flags & 2u) != 0u {
        x = x + bias_buf[P.bias + col];
    }
    out_buf[P.out + o] = x;
}

// Writes out[row, col .. col + 4] (the part inside the matrix).
fn store4(t: Tile, row: u32, col: u32, v: vec4<f32>) {
    store1(t, row, col, v.x);
    store1(t, row, col + 1u, v.y);
    store1(t, row, col + 2u, v.z);
    store1(t, row, col + 3u, v.w);
}
