//! Training attention over the shared-prompt layout of [`Rows`], on whole
//! blocks with sgemm: per group and head, the prompt queries against the
//! prompt keys (a P×P causal block), and the group's G·S completion queries
//! against the same prompt keys (a G·S×P block) plus their own few
//! completion keys (by hand). The causal block is computed full and masked:
//! twice the multiply-adds at sgemm speed beat a triangular hand loop.
//!
//! Saved probabilities are (R, H, P+S): a prompt row's keys 0..=p (zeros
//! after), a completion row's P prompt keys then its own keys 0..=s.

use rayon::prelude::*;

use super::{Heads, Rows, group_chunks};
use crate::kernels::matmul::{axpy, dot, gemm_strided};

/// out (R, C) and probs (R, H, P+S) from the q|k|v rows (R, C + 2·H_kv·hs).
/// The first `pad[b]` keys of group b are padding: no query attends to them
/// (a padding query attends to itself only, so its row stays finite; nothing
/// reads it). The backward needs no mask: a zero probability has a zero
/// gradient.
pub fn attention_forward(out: &mut [f32], probs: &mut [f32], qkv: &[f32], rows: Rows, hd: Heads, pad: &[usize]) {
    let (c, c3, hs, stride) = (hd.c(), hd.width(), hd.hs(), rows.keys());
    let (p, gs, ph) = (rows.p, rows.g * rows.s, hd.h * stride);
    let pr = rows.prefix_rows();
    let (out_pre, out_suf) = out.split_at_mut(pr * c);
    let (pb_pre, pb_suf) = probs.split_at_mut(pr * ph);
    let (qkv_pre, qkv_suf) = qkv.split_at(pr * c3);
    let out_suf = group_chunks(out_suf, gs * c, rows.b);
    let pb_suf = group_chunks(pb_suf, gs * ph, rows.b);
    out_pre
        .par_chunks_mut(p * c)
        .zip(pb_pre.par_chunks_mut(p * ph))
        .zip(out_suf.into_par_iter().zip(pb_suf.into_par_iter()))
        .enumerate()
        .for_each(|(b, ((o_pre, p_pre), (o_suf, p_suf)))| {
            let q0 = pad.get(b).copied().unwrap_or(0);
            let kv = &qkv_pre[b * p * c3..(b + 1) * p * c3];
            let q_suf = &qkv_suf[b * gs * c3..(b + 1) * gs * c3];
            for h in 0..hd.h {
                let (qo, ko, vo) = hd.offsets(h);
                // Prompt queries: scores, causal softmax, P·V.
                gemm_strided(
                    p,
                    hs,
                    p,
                    hd.scale(),
                    &kv[qo..],
                    (c3, 1),
                    &kv[ko..],
                    (1, c3),
                    0.0,
                    &mut p_pre[h * stride..],
                    ph,
                );
                for i in 0..p {
                    let row = &mut p_pre[i * ph + h * stride..][..p];
                    let lo = q0.min(i);
                    softmax_in_place(&mut row[lo..=i]);
                    row[..lo].fill(0.0);
                    row[i + 1..].fill(0.0);
                }
                gemm_strided(
                    p,
                    p,
                    hs,
                    1.0,
                    &p_pre[h * stride..],
                    (ph, 1),
                    &kv[vo..],
                    (c3, 1),
                    0.0,
                    &mut o_pre[qo..],
                    c,
                );
                if gs == 0 {
                    continue;
                }
                // Completion queries: prompt keys by sgemm, own keys by hand.
                gemm_strided(
                    gs,
                    hs,
                    p,
                    hd.scale(),
                    &q_suf[qo..],
                    (c3, 1),
                    &kv[ko..],
                    (1, c3),
                    0.0,
                    &mut p_suf[h * stride..],
                    ph,
                );
                for j in 0..gs {
                    let (first, s) = (j - j % rows.s, j % rows.s);
                    let q = &q_suf[j * c3 + qo..][..hs];
                    let row = &mut p_suf[j * ph + h * stride..][..stride];
                    for k in 0..=s {
                        row[p + k] = dot(q, &q_suf[(first + k) * c3 + ko..][..hs]) * hd.scale();
                    }
                    softmax_in_place(&mut row[q0..p + s + 1]);
                    row[..q0].fill(0.0);
                    row[p + s + 1..].fill(0.0);
                }
                gemm_strided(
                    gs,
                    p,
                    hs,
                    1.0,
                    &p_suf[h * stride..],
                    (ph, 1),
                    &kv[vo..],
                    (c3, 1),
                    0.0,
                    &mut o_suf[qo..],
                    c,
                );
                for j in 0..gs {
                    let (first, s) = (j - j % rows.s, j % rows.s);
                    for k in 0..=s {
                        let w = p_suf[j * ph + h * stride + p + k];
                        axpy(&mut o_suf[j * c + qo..][..hs], w, &q_suf[(first + k) * c3 + vo..][..hs]);
                    }
                }
            }
        });
}

/// dqkv (R, C + 2·H_kv·hs) (overwritten) from dout (R, C). A group's prompt rows
/// collect the gradient of all its samples once, in a fixed order.
pub fn attention_backward(dqkv: &mut [f32], dout: &[f32], probs: &[f32], qkv: &[f32], rows: Rows, hd: Heads) {
    let (c, c3, hs, stride) = (hd.c(), hd.width(), hd.hs(), rows.keys());
    let (p, gs, ph) = (rows.p, rows.g * rows.s, hd.h * stride);
    let pr = rows.prefix_rows();
    dqkv.fill(0.0);
    let (d_pre, d_suf) = dqkv.split_at_mut(pr * c3);
    let d_suf = group_chunks(d_suf, gs * c3, rows.b);
    d_pre.par_chunks_mut(p * c3).zip(d_suf.into_par_iter()).enumerate().for_each(|(b, (dkv, dq_suf))| {
        let kv = &qkv[b * p * c3..(b + 1) * p * c3];
        let q_suf = &qkv[(pr + b * gs) * c3..][..gs * c3];
        let p_pre = &probs[b * p * ph..(b + 1) * p * ph];
        let p_suf = &probs[(pr + b * gs) * ph..][..gs * ph];
        let do_pre = &dout[b * p * c..(b + 1) * p * c];
        let do_suf = &dout[(pr + b * gs) * c..][..gs * c];
        let mut ds = vec![0.0f32; p * p];
        let mut ds_suf = vec![0.0f32; gs * stride];
        for h in 0..hd.h {
            let (qo, ko, vo) = hd.offsets(h);
            // Prompt queries. dP = dO·Vᵀ, dS = P ⊙ (dP − Σ P·dP) · scale.
            gemm_strided(p, hs, p, 1.0, &do_pre[qo..], (c, 1), &kv[vo..], (1, c3), 0.0, &mut ds, p);
            for i in 0..p {
                let (prow, drow) = (&p_pre[i * ph + h * stride..][..p], &mut ds[i * p..(i + 1) * p]);
                softmax_backward_in_place(drow, prow, i + 1, hd.scale());
            }
            gemm_strided(p, p, hs, 1.0, &ds, (p, 1), &kv[ko..], (c3, 1), 1.0, &mut dkv[qo..], c3);
            gemm_strided(p, p, hs, 1.0, &ds, (1, p), &kv[qo..], (c3, 1), 1.0, &mut dkv[ko..], c3);
            gemm_strided(p, p, hs, 1.0, &p_pre[h * stride..], (1, ph), &do_pre[qo..], (c, 1), 1.0, &mut dkv[vo..], c3);
            if gs == 0 {
                continue;
            }
            // Completion queries against the prompt keys (sgemm) and their own keys (by hand).
            gemm_strided(gs, hs, p, 1.0, &do_suf[qo..], (c, 1), &kv[vo..], (1, c3), 0.0, &mut ds_suf, stride);
            for j in 0..gs {
                let (first, s) = (j - j % rows.s, j % rows.s);
                let d_o = &do_suf[j * c + qo..][..hs];
                let drow = &mut ds_suf[j * stride..(j + 1) * stride];
                for k in 0..=s {
                    drow[p + k] = dot(d_o, &q_suf[(first + k) * c3 + vo..][..hs]);
                }
                let prow = &p_suf[j * ph + h * stride..][..stride];
                softmax_backward_in_place(drow, prow, p + s + 1, hd.scale());
            }
            gemm_strided(gs, p, hs, 1.0, &ds_suf, (stride, 1), &kv[ko..], (c3, 1), 1.0, &mut dq_suf[qo..], c3);
            gemm_strided(p, gs, hs, 1.0, &ds_suf, (1, stride), &q_suf[qo..], (c3, 1), 1.0, &mut dkv[ko..], c3);
            gemm_strided(p, gs, hs, 1.0, &p_suf[h * stride..], (1, ph), &do_suf[qo..], (c, 1), 1.0, &mut dkv[vo..], c3);
            for j in 0..gs {
                let (first, s) = (j - j % rows.s, j % rows.s);
                for k in 0..=s {
                    let (dsk, pk) = (ds_suf[j * stride + p + k], p_suf[j * ph + h * stride + p + k]);
                    let key = first + k;
                    axpy(&mut dq_suf[j * c3 + qo..][..hs], dsk, &q_suf[key * c3 + ko..][..hs]);
                    axpy(&mut dq_suf[key * c3 + ko..][..hs], dsk, &q_suf[j * c3 + qo..][..hs]);
                    axpy(&mut dq_suf[key * c3 + vo..][..hs], pk, &do_suf[j * c + qo..][..hs]);
                }
            }
        }
    });
}

/// Softmax of `row` in place.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// dP → dS = P ⊙ (dP − Σ_k P_k dP_k) · scale over the first `n` keys; zeros after.
fn softmax_backward_in_place(d: &mut [f32], p: &[f32], n: usize, scale: f32) {
    let sum = dot(&d[..n], &p[..n]);
    for k in 0..n {
        d[k] = p[k] * (d[k] - sum) * scale;
    }
    d[n..].fill(0.0);
}
