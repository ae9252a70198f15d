// The positional parameter block of the kernels not yet given a struct of
// their own: slots 0..13 belong to the kernel; 14 and 15 hold the bit
// patterns of −inf and NaN, passed at run time because WGSL constant
// expressions may not be infinite or NaN. Included before common.wgsl.

struct Params {
    p: array<vec4<u32>, 4>,
}

@group(0) @binding(15) var<uniform> params: Params;

fn prm(i: u32) -> u32 {
    return params.p[i / 4u][i % 4u];
}

fn prmf(i: u32) -> f32 {
    return bitcast<f32>(prm(i));
}

fn neg_inf() -> f32 {
    return bitcast<f32>(prm(14u));
}

fn nan() -> f32 {
    return bitcast<f32>(prm(15u));
}
