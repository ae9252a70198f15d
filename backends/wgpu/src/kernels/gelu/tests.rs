//! GELU forward and backward against the tanh formula.

use super::*;
use crate::WgpuContext;
use crate::kernels::test_util::{Lcg, check, get, put};

const K: f64 = 0.7978846;

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (K * (x + 0.044715 * x * x * x)).tanh())
}

fn dgelu(x: f64) -> f64 {
    let t = (K * (x + 0.044715 * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K * (1.0 + 3.0 * 0.044715 * x * x)
}

/// Random values in [−6, 6] and the extremes where tanh saturates.
fn inputs(g: &mut Lcg, n: usize) -> Vec<f32> {
    let mut x = g.vec(n, -6.0, 6.0);
    let special = [0.0, -0.0, 1e-4, -1e-4, 9.0, -9.0, 30.0, -30.0, 1e4, -1e4, 3e12, -3e12, 1e20, -1e20, 2.5, -2.5];
    for (v, s) in x.iter_mut().zip(special) {
        *v = s;
    }
    x
}

fn case(dev: &crate::context::WgpuDevice, g: &mut Lcg, n: usize) {
    let x = inputs(g, n);
    let d = g.vec(n, -1.0, 1.0);
    let (tx, td) = (put(dev, &x, 3).unwrap(), put(dev, &d, 70).unwrap());
    let (xv, dv) = (View::at(&tx, 3, n as u64), View::at(&td, 70, n as u64));
    let to = put(dev, &vec![0.0; n], 1).unwrap();
    let ov = View::at(&to, 1, n as u64);
    gelu_forward(ov, xv).unwrap();
    let want: Vec<f64> = x.iter().map(|&v| gelu(v as f64)).collect();
    check(&format!("gelu_forward n={n}"), &get(ov), &want, 1e-6);
    gelu_backward(ov, xv, dv).unwrap();
    let want: Vec<f64> = x.iter().zip(&d).map(|(&v, &d)| dgelu(v as f64) * d as f64).collect();
    check(&format!("gelu_backward n={n}"), &get(ov), &want, 1e-6);
}

#[test]
fn gelu_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(31);
    for n in [1, 5, 128, 300, 257 * 5, 257 * 300] {
        case(&dev, &mut g, n);
    }
}

#[test]
fn gelu_splits_beyond_the_binding_limit() {
    if crate::test_context().is_none() {
        return;
    }
    let dev = WgpuContext::with_binding_cap(1024).unwrap();
    case(&dev, &mut Lcg(32), 1000);
}

#[test]
fn gelu_checks_lengths_and_aliasing() {
    let Some(dev) = crate::test_context() else { return };
    let t = put(&dev, &[0.0; 8], 0).unwrap();
    assert!(gelu_forward(View::at(&t, 0, 4), View::at(&t, 4, 4)).is_err());
    let u = put(&dev, &[0.0; 8], 0).unwrap();
    assert!(gelu_forward(View::at(&t, 0, 4), View::at(&u, 0, 3)).is_err());
    assert!(gelu_backward(View::at(&t, 0, 4), View::at(&u, 0, 4), View::at(&u, 0, 5)).is_err());
}
