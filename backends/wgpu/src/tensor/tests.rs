//! Tensors held in several buffers, on a context whose buffers are capped at
//! 2 KiB and bindings at 1 KiB: transfers, `full`, the ops that work across
//! buffers, the copy kernel, and the errors of the ops that do not.

use wapo_core::{Binary, Reduce, Shape, Tensor, Unary};

use crate::{WgpuContext, WgpuDevice, WgpuTensor, test_context};

fn capped() -> Option<WgpuDevice> {
    test_context()?;
    Some(WgpuContext::with_limits_cap(1024, 2048).unwrap())
}

/// 23 rows of 37: 3404 bytes in buffers of 10 rows.
const ROWS: usize = 23;
const C: usize = 37;

fn data(n: usize) -> Vec<f64> {
    (0..n).map(|k| ((k * 37) % 101) as f64 / 25.0 - 2.0).collect()
}

fn assert_close(name: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let mut worst = 0.0f64;
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs();
        worst = worst.max(err / w.abs().max(1.0));
        assert!(err <= 1e-6 * w.abs().max(1.0), "{name}[{k}]: {g} vs {w}");
    }
    println!("{name}: {} values, max relative difference {worst:e}", got.len());
}

#[test]
fn transfers_and_full_span_buffers() {
    let Some(dev) = capped() else { return };
    let shape = Shape::d2(ROWS, C);
    let host = data(ROWS * C);
    let x = WgpuTensor::upload(&dev, &host, shape).unwrap();
    assert_eq!(x.segment_count(), 3);
    let mut back = vec![0.0; host.len()];
    x.download(&mut back).unwrap();
    let want: Vec<f64> = host.iter().map(|v| *v as f32 as f64).collect();
    assert_eq!(back, want, "upload/download round trip");
    let f = WgpuTensor::full(&dev, shape, 2.5).unwrap();
    assert!(f.segment_count() > 1);
    assert_close("full", &f.to_vec().unwrap(), &vec![2.5; ROWS * C]);
    let i = WgpuTensor::iota_last(&dev, shape).unwrap();
    let want: Vec<f64> = (0..ROWS * C).map(|k| (k % C) as f64).collect();
    assert_close("iota_last", &i.to_vec().unwrap(), &want);
    // A 1-D tensor: its one row is cut into buffers on 64 elements.
    let host = data(1000);
    let y = WgpuTensor::upload(&dev, &host, Shape::d1(1000)).unwrap();
    assert_eq!(y.segment_count(), 2);
    assert_close("1-D round trip", &y.to_vec().unwrap(), &host);
}

#[test]
fn elementwise_reduce_and_gather_span_buffers() {
    let Some(dev) = capped() else { return };
    let shape = Shape::d2(ROWS, C);
    let (a, b) = (data(ROWS * C), data(ROWS * C + 5)[5..].to_vec());
    let (ta, tb) = (WgpuTensor::upload(&dev, &a, shape).unwrap(), WgpuTensor::upload(&dev, &b, shape).unwrap());
    let r: Vec<f64> = (0..ROWS).map(|k| k as f64 * 0.5).collect();
    let tr = WgpuTensor::upload(&dev, &r, Shape::d1(ROWS)).unwrap();
    let sum = ta.binary(&tb, Binary::Mul).unwrap().add(&tr).unwrap().mul_scalar(0.5).unwrap();
    let want: Vec<f64> = (0..ROWS * C).map(|k| (a[k] * b[k] + r[k / C]) * 0.5).collect();
    assert_close("(a·b + row)·0.5", &sum.to_vec().unwrap(), &want);
    let e = ta.unary(Unary::Exp).unwrap();
    let want: Vec<f64> = a.iter().map(|v| v.exp()).collect();
    assert_close("exp", &e.to_vec().unwrap(), &want);
    let lse = ta.reduce_last(Reduce::LogSumExp).unwrap();
    let want: Vec<f64> = a.chunks(C).map(|row| row.iter().map(|v| v.exp()).sum::<f64>().ln()).collect();
    assert_close("logsumexp", &lse.to_vec().unwrap(), &want);
    let idx: Vec<f64> = (0..ROWS).map(|k| ((k * 11) % C) as f64).collect();
    let ti = WgpuTensor::upload(&dev, &idx, Shape::d1(ROWS)).unwrap();
    let g = ta.gather_last(&ti).unwrap();
    let want: Vec<f64> = (0..ROWS).map(|k| a[k * C + idx[k] as usize]).collect();
    assert_close("gather_last", &g.to_vec().unwrap(), &want);
}

#[test]
fn copy_spans_buffers() {
    let Some(dev) = capped() else { return };
    let host = data(ROWS * C);
    // Rows of 37 in buffers of 370 elements into buffers of 512: the chunks
    // at the boundaries are not on 4 elements (the scalar kernel).
    let x = WgpuTensor::upload(&dev, &host, Shape::d2(ROWS, C)).unwrap();
    let out = WgpuTensor::full(&dev, Shape::d1(ROWS * C), -1.0).unwrap();
    crate::kernels::copy::copy(&x, &out).unwrap();
    let n = ROWS * C / 4 * 4;
    let mut want: Vec<f64> = host[..n].to_vec();
    want.extend(std::iter::repeat_n(-1.0, ROWS * C - n));
    assert_close("copy (rows of 37 → 1-D)", &out.to_vec().unwrap(), &want);
    // Same layout on both sides (the benchmark's): vec4 throughout.
    let host = data(3000);
    let (x, out) = (
        WgpuTensor::upload(&dev, &host, Shape::d1(3000)).unwrap(),
        WgpuTensor::full(&dev, Shape::d1(3000), 0.0).unwrap(),
    );
    assert_eq!(x.segment_count(), 6);
    crate::kernels::copy::copy(&x, &out).unwrap();
    assert_close("copy (1-D)", &out.to_vec().unwrap(), &host);
}

#[test]
fn unsupported_ops_name_themselves() {
    let Some(dev) = capped() else { return };
    let n = ROWS * C;
    let x = WgpuTensor::upload(&dev, &data(n), Shape::d1(n)).unwrap();
    assert!(x.segment_count() > 1);
    let idx = WgpuTensor::upload(&dev, &[0.0, 3.0], Shape::d1(2)).unwrap();
    let seg_ids = WgpuTensor::full(&dev, Shape::d1(n), 0.0).unwrap();
    let pairs = WgpuTensor::full(&dev, Shape::d2(n, 2), 1.0).unwrap();
    let rows = WgpuTensor::upload(&dev, &data(n), Shape::d2(ROWS, C)).unwrap();
    let view = crate::kernels::View::all(&x);
    let cases: [(&str, wapo_core::Result<()>); 6] = [
        ("take", x.take(&idx).map(drop)),
        ("segment_sum", x.segment_sum(&seg_ids, 1).map(drop)),
        ("reduce_last", x.reduce_last(Reduce::Sum).map(drop)),
        // A (rows, 37) tensor seen as rows of 23: buffers end inside rows.
        ("reduce_last", rows.reshape(Shape::d2(C, ROWS)).unwrap().reduce_last(Reduce::Max).map(drop)),
        // A per-row operand held in several buffers.
        ("binary", pairs.add(&x).map(drop)),
        ("wte", view.bind(0, "wte").map(drop)),
    ];
    for (op, res) in cases {
        let msg = res.expect_err(op).to_string();
        println!("{op}: {msg}");
        assert!(msg.contains(op), "{op}: {msg}");
    }
}

/// The objective benchmark's synthetic batch (built by elementwise ops) and
/// its copy yardstick run on logits held in several buffers, with the
/// numbers of the same batch in one buffer.
#[test]
fn bench_runs_on_segmented_logits() {
    let Some(dev) = capped() else { return };
    let one = WgpuContext::with_binding_cap(1024).unwrap();
    let (rows, vocab) = (40, 64);
    let a = crate::bench::BenchBatch::<WgpuTensor>::synthetic(&one, rows, vocab).unwrap();
    let b = crate::bench::BenchBatch::<WgpuTensor>::synthetic(&dev, rows, vocab).unwrap();
    assert!(b.logits.segment_count() > 1);
    let (p, q) = (a.run().unwrap(), b.run().unwrap());
    let (ga, gb) = (p.grad_logits.unwrap(), q.grad_logits.unwrap());
    assert!(gb.segment_count() > 1);
    assert_eq!(a.logits.to_vec().unwrap(), b.logits.to_vec().unwrap(), "synthetic logits");
    assert_eq!(p.loss.to_vec().unwrap(), q.loss.to_vec().unwrap(), "loss");
    assert_eq!(ga.to_vec().unwrap(), gb.to_vec().unwrap(), "grad_logits");
    let rows = crate::bench::bench_objective(&dev, &[(rows, vocab)], 1).unwrap();
    println!("{rows:?}");
    assert!(rows[0].ms > 0.0 && rows[0].copy_gbps.is_some_and(|g| g > 0.0));
}
