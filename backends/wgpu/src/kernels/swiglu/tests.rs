//! SwiGLU forward and backward against the definition.

use super::{swiglu_backward, swiglu_forward};
use crate::kernels::View;
use crate::kernels::test_util::{Lcg, check, get, put};
use crate::test_context;

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

#[test]
fn forward_and_backward_match_the_definition() {
    let Some(dev) = test_context() else { return };
    for (rows, m) in [(3usize, 5usize), (7, 300)] {
        let mut rng = Lcg(rows as u64);
        // Gates far into both tails of the sigmoid.
        let fch = rng.vec(rows * 2 * m, -12.0, 12.0);
        let d = rng.vec(rows * m, -1.0, 1.0);
        let (tf, td) = (put(&dev, &fch, 3).unwrap(), put(&dev, &d, 1).unwrap());
        let (fv, dv) = (View::at(&tf, 3, fch.len() as u64), View::at(&td, 1, d.len() as u64));
        let to = put(&dev, &vec![0.0; rows * m], 2).unwrap();
        let ov = View::at(&to, 2, (rows * m) as u64);
        swiglu_forward(ov, fv, rows, m).unwrap();
        let (mut want, mut want_d) = (Vec::new(), vec![0.0; rows * 2 * m]);
        let h = 1e-6;
        for r in 0..rows {
            for i in 0..m {
                let (g, u) = (fch[r * 2 * m + i] as f64, fch[r * 2 * m + m + i] as f64);
                want.push(silu(g) * u);
                // ∂/∂gate by central differences, ∂/∂up = silu(g).
                let dd = d[r * m + i] as f64;
                want_d[r * 2 * m + i] = dd * u * (silu(g + h) - silu(g - h)) / (2.0 * h);
                want_d[r * 2 * m + m + i] = dd * silu(g);
            }
        }
        check(&format!("swiglu out {rows}×{m}"), &get(ov), &want, 1e-6);
        let tg = put(&dev, &vec![f32::NAN; rows * 2 * m], 4).unwrap();
        let gv = View::at(&tg, 4, (rows * 2 * m) as u64);
        swiglu_backward(gv, fv, dv, rows, m).unwrap();
        check(&format!("swiglu dfch {rows}×{m}"), &get(gv), &want_d, 1e-6);
    }
}
