//! Declared parameter structs reach WGSL field for field.

use wapo_core::Shape;

use super::{Kernel, Params, dispatch, whole};
use crate::tensor::WgpuTensor;
use crate::test_context;

wgsl_struct! {
    struct Inner {
        x: u32,
        y: f32,
        z: i32,
        w: u32,
    }
}

kernel_params! {
    struct Probe {
        first: u32,
        /// A nested struct starts at a multiple of 16 bytes in a uniform
        /// (asserted at compile time): three words of padding.
        pad0: u32,
        pad1: u32,
        pad2: u32,
        inner: Inner,
        last: f32,
    }
}

const PROBE: &str = concat!(
    include_str!("../kernels/common.wgsl"),
    "@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() {
    out[0] = f32(P.first);
    out[1] = f32(P.inner.x);
    out[2] = P.inner.y;
    out[3] = f32(P.inner.z);
    out[4] = f32(P.inner.w);
    out[5] = P.last;
    out[6] = neg_inf();
    out[7] = select(0.0, 1.0, is_nan(nan()));
}
"
);

/// The declaration is the layout both sides use: each field read in WGSL
/// is the value written from Rust, through a nested struct, and −inf and
/// NaN arrive in the two words after the fields.
#[test]
fn parameter_structs_reach_the_kernel_field_for_field() {
    let Some(dev) = test_context() else { return };
    assert!(Probe::WGSL.last().unwrap().contains("struct Probe {\n    first: u32,\n    pad0: u32,\n    pad1: u32,\n    pad2: u32,\n    inner: Inner,\n    last: f32,\n"));
    let out = WgpuTensor::empty(&dev, Shape::d1(8)).unwrap();
    let p = Probe { first: 7, pad0: 0, pad1: 0, pad2: 0, inner: Inner { x: 11, y: -2.5, z: -3, w: 13 }, last: 0.125 };
    let k = Kernel { name: "launch_probe", source: PROBE, entry: "main", constants: vec![] };
    dispatch(out.ctx(), &k, &[whole(7, out.buf())], &p, 1).unwrap();
    let got = out.to_vec().unwrap();
    assert_eq!(&got[..6], &[7.0, 11.0, -2.5, -3.0, 13.0, 0.125]);
    assert_eq!(got[6], f32::NEG_INFINITY);
    assert_eq!(got[7], 1.0, "nan() is a NaN");
}
