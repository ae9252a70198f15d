// 128×128 output tile per workgroup of 16×16 threads, 8×8 outputs per
// thread (rows ty·4 + {0..3} and 64 + ty·4 + {0..3}, likewise columns, so
// that a warp's vec4 reads of a shared k-row are contiguous), k-tiles of 8
// prefetched into registers while the previous tile is multiplied. (Tiles
// of 16 ran no faster on an H200.)

const TILE: u32 = 128u;
const BK: u32 = 8u;
const SV: u32 = 33u;

var<workgroup> a_sh: array<vec4<f32>, BK * SV>;
var<workgroup> b_sh: array<vec4<f32>, BK * SV>;

// acc[2·r + h]: output row r of the thread (0..8), column half h.
var<private> acc: array<vec4<f32>, 16>;

fn step(kk: u32, tx: u32, ty: u32) {
    let a0 = a_sh[kk * SV + ty];
    let a1 = a_sh[kk * SV + 16u + ty];
    let b0 = b_sh[kk * SV + tx];
    let b1 = b_sh[kk * SV + 16u + tx];
    acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
    acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
    acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
    acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
    acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
    acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
    acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
    acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
    acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
    acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
    acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
    acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
    acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
    acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
    acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
    acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
}

fn store_rows(t: Tile, row: u32, first: u32, col0: u32, col1: u32) {
    store4(t, row, col0, acc[first]);
    store4(t, row, col1, acc[first + 1u]);
    store4(t, row + 1u, col0, acc[first + 2u]);
    store4(t, row + 1u, col1, acc[first + 3u]);
    store4(t, row + 2u, col0, acc[first + 4u]);
    store4(t, row + 2u, col1, acc[first + 5u]);
    store4(t, row + 3u, col0, acc[first + 6u]);
    store4(t, row + 3u, col1, acc[first + 7u]);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = wg_index(wid, nwg);
    if wg >= P.groups {
        return;
    }
    let t = tile_of(wg);
    let tx = lid % 16u;
    let ty = lid / 16u;
    acc = array<vec4<f32>, 16>();
    var ra = load_a(t, t.k0, lid);
    var rb = load_b(t, t.k0, lid);
    for (var kt = t.k0; kt < t.k1; kt += BK) {
        stage(ra, rb, lid);
        workgroupBarrier();
        if kt + BK < t.k1 {
            ra = load_a(t, kt + BK, lid);
            rb = load_b(t, kt + BK, lid);
        }
        step(0u, tx, ty);
        step(1u, tx, ty);
        step(2u, tx, ty);
        step(3u, tx, ty);
        step(4u, tx, ty);
        step(5u, tx, ty);
        step(6u, tx, ty);
        step(7u, tx, ty);
        workgroupBarrier();
    }
    let col0 = t.col0 + tx * 4u;
    let col1 = t.col0 + 64u + tx * 4u;
    store_rows(t, t.row0 + ty * 4u, 0u, col0, col1);
    store_rows(t, t.row0 + 64u + ty * 4u, 8u, col0, col1);
}
