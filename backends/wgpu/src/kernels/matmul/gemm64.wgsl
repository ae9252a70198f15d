// 64×64 output tile per workgroup of 16×16 threads, 4×4 outputs per thread,
// k-tiles of BK = 16 prefetched into registers: for outputs too small or
// too narrow to fill the 128×128 tiles.

const TILE: u32 = 64u;
const BK: u32 = 16u;
const SV: u32 = 17u;

var<workgroup> a_sh: array<vec4<f32>, BK * SV>;
var<workgroup> b_sh: array<vec4<f32>, BK * SV>;

// acc[r]: output row r of the thread.
var<private> acc: array<vec4<f32>, 4>;

fn step(kk: u32, tx: u32, ty: u32) {
    let a = a_sh[kk * SV + ty];
    let b = b_sh[kk * SV + tx];
    acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
    acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
    acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
    acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
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
    acc = array<vec4<f32>, 4>();
    var ra = load_a(t, t.k0, lid);
    var rb = load_b(t, t.k0, lid);
    for (var kt = t.k0; kt < t.k1; kt += BK) {
        stage(ra, rb, lid);
        workgroupBarrier();
        if kt + BK < t.k1 {
            ra = load_a(t, kt + BK, lid);
            rb = load_b(t, kt + BK, lid);
        }
        for (var k8 = 0u; k8 < BK; k8 += 8u) {
            step(k8, tx, ty);
            step(k8 + 1u, tx, ty);
            step(k8 + 2u, tx, ty);
            step(k8 + 3u, tx, ty);
            step(k8 + 4u, tx, ty);
            step(k8 + 5u, tx, ty);
            step(k8 + 6u, tx, ty);
            step(k8 + 7u, tx, ty);
        }
        workgroupBarrier();
    }
    let r = t.row0 + ty * 4u;
    let c = t.col0 + tx * 4u;
    store4(t, r, c, acc[0]);
    store4(t, r + 1u, c, acc[1]);
    store4(t, r + 2u, c, acc[2]);
    store4(t, r + 3u, c, acc[3]);
}
