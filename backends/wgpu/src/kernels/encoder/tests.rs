//! The embedding kernels against a host reference; bad token and position indices.

use super::*;
use crate::kernels::test_util::{Lcg, check, get, put, put_u32};

const SHAPES: [(usize, usize); 7] = [(1, 1), (3, 5), (257, 1), (3, 128), (257, 5), (1, 300), (257, 300)];

#[test]
fn forward_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(11);
    let (vocab, npos) = (11, 13);
    for (rows, c) in SHAPES {
        let wte = g.vec(vocab * c, -1.0, 1.0);
        let wpe = g.vec(npos * c, -1.0, 1.0);
        // Every other u32 is a token (tok_stride 2), the last one vocab − 1.
        let mut toks: Vec<u32> = (0..2 * rows).map(|_| g.below(vocab as u32)).collect();
        toks[2 * (rows - 1)] = vocab as u32 - 1;
        let pos: Vec<u32> = (0..rows).map(|_| g.below(npos as u32)).collect();
        // wte and wpe: two read views of one parameter block.
        let mut params = wte.clone();
        params.extend_from_slice(&wpe);
        let tp = put(&dev, &params, 17).unwrap();
        let wte_v = View::at(&tp, 17, (vocab * c) as u64);
        let wpe_v = View::at(&tp, 17 + (vocab * c) as u64, (npos * c) as u64);
        let tt = put_u32(&dev, &toks, 5).unwrap();
        let tq = put_u32(&dev, &pos, 2).unwrap();
        let to = put(&dev, &vec![0.0; rows * c], 3).unwrap();
        let ov = View::at(&to, 3, (rows * c) as u64);
        let tv = View::at(&tt, 5, toks.len() as u64);
        let per_row = Positions::PerRow(View::at(&tq, 2, rows as u64));
        encoder_forward(ov, wte_v, wpe_v, tv, 2, per_row, rows, c).unwrap();
        let row = |r: usize, p: usize| -> Vec<f64> {
            let t = toks[2 * r] as usize;
            (0..c).map(|j| (wte[t * c + j] + wpe[p * c + j]) as f64).collect()
        };
        let want: Vec<f64> = (0..rows).flat_map(|r| row(r, pos[r] as usize)).collect();
        check(&format!("encoder_forward per row rows={rows} c={c}"), &get(ov), &want, 0.0);

        encoder_forward(ov, wte_v, wpe_v, tv, 2, Positions::Same(npos as u32 - 1), rows, c).unwrap();
        let want: Vec<f64> = (0..rows).flat_map(|r| row(r, npos - 1)).collect();
        check(&format!("encoder_forward same rows={rows} c={c}"), &get(ov), &want, 0.0);
    }
}

#[test]
fn forward_bad_indices() {
    let Some(dev) = crate::test_context() else { return };
    let (wte, wpe) = (put(&dev, &[1.0, 2.0, 3.0, 4.0], 0).unwrap(), put(&dev, &[10.0, 20.0], 0).unwrap());
    let tt = put_u32(&dev, &[1, 2], 0).unwrap();
    let to = put(&dev, &[0.0; 4], 0).unwrap();
    let (ov, tv) = (View::at(&to, 0, 4), View::at(&tt, 0, 2));
    let (wte, wpe) = (View::at(&wte, 0, 4), View::at(&wpe, 0, 2));
    // A token beyond wte gives a NaN row.
    encoder_forward(ov, wte, wpe, tv, 1, Positions::Same(0), 2, 2).unwrap();
    check("encoder_forward bad token", &get(ov), &[13.0, 24.0, f64::NAN, f64::NAN], 0.0);
    let e = encoder_forward(ov, wte, wpe, tv, 1, Positions::Same(1), 2, 2).expect_err("position 1 ≥ 1 row of wpe");
    assert!(e.to_string().contains("pos"), "{e}");
    assert!(encoder_forward(ov, wte, wpe, tv, 2, Positions::Same(0), 2, 2).is_err(), "tokens too short for stride 2");
    // Without a position table (rotary models) a row is its token's embedding,
    // whatever the position.
    let none = View::at(wpe.t, 0, 0);
    encoder_forward(ov, wte, none, tv, 1, Positions::Same(5), 2, 2).unwrap();
    check("encoder_forward without positions", &get(ov), &[3.0, 4.0, f64::NAN, f64::NAN], 0.0);
}

#[test]
fn backward_matches_reference() {
    let Some(dev) = crate::test_context() else { return };
    let mut g = Lcg(12);
    let (vocab, npos) = (11, 13);
    for (rows, c) in SHAPES {
        let mut toks: Vec<u32> = (0..rows).map(|_| [0u32, 4, 4, 7][g.below(4) as usize]).collect();
        toks[rows - 1] = vocab as u32 - 1;
        let pos: Vec<u32> = (0..rows).map(|r| (r % npos) as u32).collect();
        let by_token = RowLists::build(&dev, &toks, vocab, "tokens").unwrap();
        let by_pos = RowLists::build(&dev, &pos, npos, "pos").unwrap();
        let dout = g.vec(rows * c, -1.0, 1.0);
        // dwte and dwpe: two read_write views of one gradient block, nonzero.
        let grads = g.vec((vocab + npos) * c, -1.0, 1.0);
        let tg = put(&dev, &grads, 9).unwrap();
        let td = put(&dev, &dout, 1).unwrap();
        let dwte = View::at(&tg, 9, (vocab * c) as u64);
        let dwpe = View::at(&tg, 9 + (vocab * c) as u64, (npos * c) as u64);
        encoder_backward(dwte, dwpe, View::at(&td, 1, dout.len() as u64), &by_token, &by_pos, c).unwrap();
        let mut want: Vec<f64> = grads.iter().map(|&x| x as f64).collect();
        for r in 0..rows {
            for j in 0..c {
                want[toks[r] as usize * c + j] += dout[r * c + j] as f64;
                want[(vocab + pos[r] as usize) * c + j] += dout[r * c + j] as f64;
            }
        }
        check(&format!("encoder_backward rows={rows} c={c}"), &get(View::at(&tg, 9, want.len() as u64)), &want, 1e-5);
    }
}
