//! The row kernels (fill, add, gather, scatter-add) against host references.

use super::*;
use crate::WgpuContext;
use crate::kernels::test_util::{Lcg, check, get, get_u32, put, put_u32};

const SHAPES: [(usize, usize); 7] = [(1, 1), (3, 5), (257, 1), (3, 128), (257, 5), (1, 300), (257, 300)];

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn fill_and_add() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(1);
    for n in [1usize, 5, 300, 1285] {
        let t = put(&dev, &vec![0.0; n], 3).unwrap();
        fill(View::at(&t, 3, n as u64), -1.5).unwrap();
        check("fill", &get(View::at(&t, 3, n as u64)), &vec![-1.5; n], 0.0);

        let (a, b) = (g.vec(n, -2.0, 2.0), g.vec(n, -2.0, 2.0));
        let ta = put(&dev, &a, 7).unwrap();
        // a and b: two read views of one tensor.
        let mut ab = a.clone();
        ab.extend_from_slice(&b);
        let tab = put(&dev, &ab, 1).unwrap();
        let out = put(&dev, &vec![0.0; n], 65).unwrap();
        let ov = View::at(&out, 65, n as u64);
        add(ov, View::at(&ta, 7, n as u64), View::at(&tab, 1 + n as u64, n as u64)).unwrap();
        let want: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| (x + y) as f64).collect();
        check("add", &get(ov), &want, 0.0);
    }
}

#[test]
fn output_sharing_an_input_tensor_is_refused() {
    let Some(dev) = crate::test_context() else { return };
    let t = put(&dev, &[1.0; 8], 0).unwrap();
    let err = add(View::at(&t, 0, 4), View::at(&t, 4, 4), View::at(&t, 4, 4));
    assert!(err.is_err_and(|e| e.to_string().contains("out and a")));
    // The context is still usable.
    fill(View::at(&t, 0, 4), 2.0).unwrap();
    assert_eq!(&t.to_vec().unwrap()[..5], &[2.0, 2.0, 2.0, 2.0, 1.0]);
    assert!(add(View::at(&t, 0, 4), View::at(&t, 4, 4), View::at(&t, 4, 3)).is_err());
}

#[test]
fn gather_rows_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(2);
    for (k, c) in SHAPES {
        let n = 7;
        let x = g.vec(n * c, -1.0, 1.0);
        let mut idx: Vec<u32> = (0..k).map(|_| g.below(n as u32)).collect();
        idx[k - 1] = n as u32 - 1;
        let tx = put(&dev, &x, 5).unwrap();
        let ti = put_u32(&dev, &idx, 3).unwrap();
        let to = put(&dev, &vec![0.0; k * c], 9).unwrap();
        let ov = View::at(&to, 9, (k * c) as u64);
        gather_rows(ov, View::at(&tx, 5, (n * c) as u64), View::at(&ti, 3, k as u64), k, c).unwrap();
        let want: Vec<f64> = idx.iter().flat_map(|&r| f64s(&x[r as usize * c..][..c])).collect();
        check(&format!("gather_rows k={k} c={c}"), &get(ov), &want, 0.0);
    }
    // An index beyond x gives a NaN row.
    let tx = put(&dev, &[1.0, 2.0, 3.0, 4.0], 0).unwrap();
    let ti = put_u32(&dev, &[1, 2], 0).unwrap();
    let to = put(&dev, &[0.0; 4], 0).unwrap();
    gather_rows(View::at(&to, 0, 4), View::at(&tx, 0, 4), View::at(&ti, 0, 2), 2, 2).unwrap();
    check("gather_rows out of range", &get(View::at(&to, 0, 4)), &[3.0, 4.0, f64::NAN, f64::NAN], 0.0);
}

#[test]
fn copy_rows_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(3);
    for (rows, c) in SHAPES {
        let (ds, ss) = (c + 3, 2 * c);
        let src = g.vec((rows - 1) * ss + c, -1.0, 1.0);
        let dst0 = g.vec((rows - 1) * ds + c, -1.0, 1.0);
        let ts = put(&dev, &src, 11).unwrap();
        let td = put(&dev, &dst0, 2).unwrap();
        let dv = View::at(&td, 2, dst0.len() as u64);
        copy_rows(dv, ds, View::at(&ts, 11, src.len() as u64), ss, rows, c).unwrap();
        let mut want = f64s(&dst0);
        for i in 0..rows {
            for j in 0..c {
                want[i * ds + j] = src[i * ss + j] as f64;
            }
        }
        check(&format!("copy_rows rows={rows} c={c}"), &get(dv), &want, 0.0);
    }
}

#[test]
fn row_lists_are_csr_and_reject_bad_keys() {
    let Some(dev) = crate::test_context() else { return };
    let keys = [3u32, 0, 3, 5, 0, 3];
    let l = RowLists::build(&dev, &keys, 6, "tokens").unwrap();
    assert_eq!(get_u32(&l.offsets), vec![0, 2, 2, 2, 5, 5, 6]);
    assert_eq!(get_u32(&l.rows), vec![1, 4, 0, 2, 5, 3]);
    assert_eq!((l.dests, l.len()), (6, 6));
    let e = RowLists::build(&dev, &keys, 5, "tokens").err().expect("key 5 ≥ 5 is refused");
    assert!(e.to_string().contains("tokens[3]"), "{e}");
    let empty = RowLists::build(&dev, &[], 4, "tokens").unwrap();
    assert!(empty.is_empty());
    assert_eq!(get_u32(&empty.offsets), vec![0; 5]);
}

#[test]
fn scatter_add_rows_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(4);
    for (n, c) in SHAPES {
        let dests = 9;
        // Repeated keys, empty lists (1, 2, ...) and the last destination.
        let mut keys: Vec<u32> = (0..n).map(|_| [0u32, 3, 3, 4, 8][g.below(5) as usize]).collect();
        keys[n - 1] = dests as u32 - 1;
        let lists = RowLists::build(&dev, &keys, dests, "keys").unwrap();
        let x = g.vec(n * c, -1.0, 1.0);
        let out0 = g.vec(dests * c, -1.0, 1.0);
        let tx = put(&dev, &x, 13).unwrap();
        let to = put(&dev, &out0, 6).unwrap();
        let ov = View::at(&to, 6, out0.len() as u64);
        scatter_add_rows(ov, View::at(&tx, 13, x.len() as u64), &lists, c).unwrap();
        let mut want = f64s(&out0);
        for (r, &k) in keys.iter().enumerate() {
            for j in 0..c {
                want[k as usize * c + j] += x[r * c + j] as f64;
            }
        }
        check(&format!("scatter_add_rows n={n} c={c}"), &get(ov), &want, 1e-5);
    }
}

#[test]
fn scatter_add_rows_sums_in_list_order() {
    let Some(dev) = crate::test_context() else { return };
    // 1 + 1e8 − 1e8 is 0 in f32 in this order, 1 in any other grouping.
    let lists = RowLists::build(&dev, &[0, 0, 0], 1, "keys").unwrap();
    let tx = put(&dev, &[1.0, 1e8, -1e8], 0).unwrap();
    let to = put(&dev, &[0.0], 0).unwrap();
    scatter_add_rows(View::at(&to, 0, 1), View::at(&tx, 0, 3), &lists, 1).unwrap();
    assert_eq!(get(View::at(&to, 0, 1)), vec![0.0]);
}

#[test]
fn kernels_split_views_beyond_the_binding_limit() {
    if crate::test_context().is_none() {
        return;
    }
    // 1 KiB bindings: 192 elements per dispatch.
    let dev = WgpuContext::with_binding_cap(1024).unwrap();
    let mut g = Lcg(5);
    let n = 1000;
    let (a, b) = (g.vec(n, -1.0, 1.0), g.vec(n, -1.0, 1.0));
    let (ta, tb, to) = (put(&dev, &a, 3).unwrap(), put(&dev, &b, 70).unwrap(), put(&dev, &vec![0.0; n], 129).unwrap());
    let ov = View::at(&to, 129, n as u64);
    add(ov, View::at(&ta, 3, n as u64), View::at(&tb, 70, n as u64)).unwrap();
    let want: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| (x + y) as f64).collect();
    check("add (split)", &get(ov), &want, 0.0);
    fill(ov, 0.5).unwrap();
    check("fill (split)", &get(ov), &vec![0.5; n], 0.0);

    let (k, c, rows) = (100, 5, 20);
    let x = g.vec(rows * c, -1.0, 1.0);
    let idx: Vec<u32> = (0..k).map(|_| g.below(rows as u32)).collect();
    let (tx, ti) = (put(&dev, &x, 1).unwrap(), put_u32(&dev, &idx, 2).unwrap());
    let to = put(&dev, &vec![0.0; k * c], 4).unwrap();
    let ov = View::at(&to, 4, (k * c) as u64);
    gather_rows(ov, View::at(&tx, 1, x.len() as u64), View::at(&ti, 2, k as u64), k, c).unwrap();
    let want: Vec<f64> = idx.iter().flat_map(|&r| f64s(&x[r as usize * c..][..c])).collect();
    check("gather_rows (split)", &get(ov), &want, 0.0);

    let (dests, c) = (100, 5);
    // x is bound whole (its rows are read in any order): it must fit.
    let keys: Vec<u32> = (0..30).map(|_| g.below(dests as u32)).collect();
    let lists = RowLists::build(&dev, &keys, dests, "keys").unwrap();
    let x = g.vec(keys.len() * c, -1.0, 1.0);
    let tx = put(&dev, &x, 0).unwrap();
    let to = put(&dev, &vec![0.0; dests * c], 3).unwrap();
    let ov = View::at(&to, 3, (dests * c) as u64);
    scatter_add_rows(ov, View::at(&tx, 0, x.len() as u64), &lists, c).unwrap();
    let mut want = vec![0.0f64; dests * c];
    for (r, &k) in keys.iter().enumerate() {
        for j in 0..c {
            want[k as usize * c + j] += x[r * c + j] as f64;
        }
    }
    check("scatter_add_rows (split)", &get(ov), &want, 1e-6);

    let (rows, c, ds, ss) = (90, 4, 6, 5);
    let src = g.vec((rows - 1) * ss + c, -1.0, 1.0);
    let ts = put(&dev, &src, 0).unwrap();
    let td = put(&dev, &vec![0.0; (rows - 1) * ds + c], 0).unwrap();
    let dv = View::at(&td, 0, ((rows - 1) * ds + c) as u64);
    copy_rows(dv, ds, View::at(&ts, 0, src.len() as u64), ss, rows, c).unwrap();
    let mut want = vec![0.0f64; (rows - 1) * ds + c];
    for i in 0..rows {
        for j in 0..c {
            want[i * ds + j] = src[i * ss + j] as f64;
        }
    }
    check("copy_rows (split)", &get(dv), &want, 0.0);
}
