//! The AdamW step and the gradient's squared norm against f64 host references.

use super::*;
use crate::kernels::upload_u32;

use crate::kernels::test_util::{rng, upload};

#[test]
fn sum_squares_matches_f64_and_is_deterministic() {
    let Some(dev) = crate::test_context() else { return };
    for n in [1usize, 255, 256, 257, 4095, 4097, 100_003] {
        let mut r = rng(n as u64);
        let x: Vec<f32> = (0..n).map(|_| r() * 4.0 - 2.0).collect();
        // The view starts off the binding alignment.
        let mut padded = vec![7.0f32; 5];
        padded.extend_from_slice(&x);
        let xt = upload(&dev, &padded);
        let out = alloc(&dev, 3).unwrap();
        sum_squares(View::at(&out, 1, 1), View::at(&xt, 5, n as u64)).unwrap();
        let a = out.to_vec().unwrap()[1];
        sum_squares(View::at(&out, 2, 1), View::at(&xt, 5, n as u64)).unwrap();
        let b = out.to_vec().unwrap()[2];
        let e: f64 = x.iter().map(|&g| g as f64 * g as f64).sum();
        let rel = (a as f64 - e).abs() / e;
        eprintln!("sum_squares n {n}: got {a}, f64 {e}, rel {rel:.3e}");
        assert!(rel < 1e-6, "n {n}: {a} vs {e}");
        assert_eq!(a.to_bits(), b.to_bits(), "n {n}: two runs differ");
    }
}

#[test]
fn sum_squares_of_nothing_is_zero() {
    let Some(dev) = crate::test_context() else { return };
    let xt = upload(&dev, &[3.0]);
    let out = upload(&dev, &[5.0]);
    sum_squares(View::all(&out), View::at(&xt, 0, 0)).unwrap();
    assert_eq!(out.to_vec().unwrap()[0], 0.0);
}

#[test]
fn sum_squares_independent_of_binding_limit() {
    let Some(dev) = crate::test_context() else { return };
    let Ok(small) = crate::context::WgpuContext::with_binding_cap(64 * 1024) else { return };
    let n = 50_001;
    let mut r = rng(5);
    let x: Vec<f32> = (0..n).map(|_| r() - 0.5).collect();
    let mut got = vec![];
    for d in [&dev, &small] {
        let xt = upload(d, &x);
        let out = alloc(d, 1).unwrap();
        sum_squares(View::all(&out), View::all(&xt)).unwrap();
        got.push(out.to_vec().unwrap()[0]);
    }
    eprintln!("sum_squares whole binding {} vs 64 KiB bindings {}", got[0], got[1]);
    assert_eq!(got[0].to_bits(), got[1].to_bits());
}

/// optim.rs's loop body, transcribed.
fn reference_step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: &[bool], s: &AdamStep) {
    for i in 0..p.len() {
        let g = g[i] * s.scale;
        let mi = s.beta1 * m[i] + (1.0 - s.beta1) * g;
        let vi = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        if decay[i] {
            p[i] -= s.lr * s.weight_decay * p[i];
        }
        let denom = vi.sqrt() / s.bc2_sqrt + s.eps;
        p[i] -= s.lr / s.bc1 * mi / denom;
    }
}

#[test]
fn adamw_matches_cpu_two_steps() {
    let Some(dev) = crate::test_context() else { return };
    let cfg = OptimConfig { lr: 3e-3, weight_decay: 0.1, grad_clip: 0.5, ..OptimConfig::default() };
    for n in [1usize, 257, 3001] {
        let mut r = rng(n as u64 + 100);
        let mut p: Vec<f32> = (0..n).map(|_| r() * 2.0 - 1.0).collect();
        let decay: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
        let mask: Vec<u32> = decay.iter().map(|&d| d as u32).collect();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let pt = upload(&dev, &p);
        // m and v in one tensor: two read_write views of one buffer.
        let mv = upload(&dev, &vec![0f32; 2 * n + 3]);
        let dt = upload_u32(&dev, &mask).unwrap();
        for t in 1..=2u64 {
            let g: Vec<f32> = (0..n).map(|_| r() * 0.2 - 0.1).collect();
            let norm = g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            let mut s = AdamStep::new(&cfg, t, norm);
            if n == 1 {
                // Clipping also when one gradient is small.
                s.scale = 0.25;
            }
            reference_step(&mut p, &g, &mut m, &mut v, &decay, &s);
            let gt = upload(&dev, &g);
            let (mview, vview) = (View::at(&mv, 1, n as u64), View::at(&mv, n as u64 + 3, n as u64));
            adamw(View::all(&pt), View::all(&gt), mview, vview, View::all(&dt), s).unwrap();
        }
        let gp = pt.to_vec().unwrap();
        let gmv = mv.to_vec().unwrap();
        let mut worst = 0f64;
        for (name, got, want) in
            [("params", &gp[..], &p[..]), ("m", &gmv[1..n + 1], &m[..]), ("v", &gmv[n + 3..], &v[..])]
        {
            // Relative to the field's scale, not per element: where
            // β1·m and (1−β1)·g nearly cancel, a driver that fuses a
            // multiply-add (NVIDIA does) moves the small result by many ulps
            // of itself but not of its terms.
            let scale = want.iter().map(|x| x.abs() as f64).fold(1e-30, f64::max);
            for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
                let rel = (a as f64 - b as f64).abs() / scale;
                worst = worst.max(rel);
                assert!(rel <= 1e-6, "n {n} {name}[{i}]: {a} vs {b} (field scale {scale:e})");
            }
        }
        eprintln!("adamw n {n}: max rel {worst:.3e}");
    }
}

#[test]
fn adamw_step_constants_clip() {
    let cfg = OptimConfig { lr: 0.1, grad_clip: 1.0, ..OptimConfig::default() };
    let s = AdamStep::new(&cfg, 1, 5.0);
    assert!((s.scale - 1.0 / (5.0 + 1e-6) as f32).abs() < 1e-9);
    assert!((s.bc1 - 0.1).abs() < 1e-7);
    assert_eq!(AdamStep::new(&cfg, 1, 0.5).scale, 1.0);
}

#[test]
fn adamw_rejects_bad_lengths() {
    let Some(dev) = crate::test_context() else { return };
    let a = alloc(&dev, 4).unwrap();
    let b = alloc(&dev, 4).unwrap();
    let c = alloc(&dev, 3).unwrap();
    let s = AdamStep::new(&OptimConfig::default(), 1, 0.0);
    let e = adamw(View::all(&a), View::all(&b), View::all(&c), View::all(&c), View::all(&b), s);
    assert!(e.is_err());
}
