//! ggml's block formats to and from f32: F32, F16, BF16, Q8_0, Q4_0, Q4_1.
//!
//! Blocks run along a row (ggml's `ne[0]`), so a row length must be a whole
//! number of blocks. The quantizers follow ggml's reference (`_ref`) ones:
//! the scale is computed in f32, the values are quantized with that f32
//! scale, and only then is the scale rounded to f16 for storage.

use std::path::Path;

use half::{bf16, f16};

use super::GgmlType;
use crate::error::{Error, Result};

/// Elements per block of Q8_0, Q4_0 and Q4_1.
pub const QK: usize = 32;

/// Bytes of `n` elements of `ty`, if `ty` is known and `n` is a whole number of blocks.
pub fn byte_len(ty: GgmlType, n: usize) -> Option<usize> {
    let (block, bytes) = ty.block()?;
    if !n.is_multiple_of(block) {
        return None;
    }
    (n / block).checked_mul(bytes)
}

fn check_geometry(file: &Path, tensor: &str, ty: GgmlType, row_len: usize, n: usize) -> Result<usize> {
    if !ty.is_supported() {
        let reason = match ty.name() {
            Some(name) => format!("tensor type {name} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1 are)"),
            None => format!("unknown ggml tensor type id {}", ty.0),
        };
        return Err(Error::at(file, tensor, reason));
    }
    let (block, _) = ty.block().unwrap_or((1, 1));
    if row_len == 0 && n != 0 {
        return Err(Error::at(file, tensor, "row length 0 with a non-empty tensor"));
    }
    if !row_len.is_multiple_of(block) {
        return Err(Error::at(
            file,
            tensor,
            format!("row length {row_len} is not a multiple of the {ty} block size {block}"),
        ));
    }
    if row_len != 0 && !n.is_multiple_of(row_len) {
        return Err(Error::at(file, tensor, format!("{n} elements are not a whole number of rows of {row_len}")));
    }
    byte_len(ty, n).ok_or_else(|| Error::at(file, tensor, format!("{n} elements of {ty} overflow the address space")))
}

/// The `n` f32 values of a tensor of type `ty` stored in `bytes`, rows of `row_len`.
pub fn dequantize(file: &Path, tensor: &str, ty: GgmlType, row_len: usize, n: usize, bytes: &[u8]) -> Result<Vec<f32>> {
    let want = check_geometry(file, tensor, ty, row_len, n)?;
    if bytes.len() != want {
        return Err(Error::at(file, tensor, format!("{n} elements of {ty} take {want} bytes, {} given", bytes.len())));
    }
    let mut out = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(bytes.chunks_exact(2).map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => bytes.chunks_exact(34).for_each(|b| dequantize_q8_0(b, &mut out)),
        GgmlType::Q4_0 => bytes.chunks_exact(18).for_each(|b| dequantize_q4_0(b, &mut out)),
        GgmlType::Q4_1 => bytes.chunks_exact(20).for_each(|b| dequantize_q4_1(b, &mut out)),
        _ => unreachable!("check_geometry admits only supported types"),
    }
    Ok(out)
}

/// `data` (rows of `row_len`) stored as `ty`.
pub fn quantize(file: &Path, tensor: &str, ty: GgmlType, row_len: usize, data: &[f32]) -> Result<Vec<u8>> {
    let want = check_geometry(file, tensor, ty, row_len, data.len())?;
    let quantized = [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1].contains(&ty);
    if quantized && let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::at(file, tensor, format!("element {i} is {}, which {ty} cannot hold", data[i])));
    }
    let mut out = Vec::with_capacity(want);
    match ty {
        GgmlType::F32 => data.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        GgmlType::F16 => data.iter().for_each(|&x| out.extend_from_slice(&f16::from_f32(x).to_le_bytes())),
        GgmlType::BF16 => data.iter().for_each(|&x| out.extend_from_slice(&bf16::from_f32(x).to_le_bytes())),
        GgmlType::Q8_0 => data.chunks_exact(QK).for_each(|b| quantize_q8_0(b, &mut out)),
        GgmlType::Q4_0 => data.chunks_exact(QK).for_each(|b| quantize_q4_0(b, &mut out)),
        GgmlType::Q4_1 => data.chunks_exact(QK).for_each(|b| quantize_q4_1(b, &mut out)),
        _ => unreachable!("check_geometry admits only supported types"),
    }
    Ok(out)
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// One Q8_0 block: f16 d, 32 × i8 q; x = d·q.
pub(crate) fn dequantize_q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(b[2..34].iter().map(|&q| d * f32::from(q as i8)));
}

/// One Q4_0 block: f16 d, 16 bytes; element j < 16 is the low nibble of
/// byte j, element j + 16 its high nibble; x = d·(q − 8).
pub(crate) fn dequantize_q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    out.extend(qs.iter().map(|&q| d * f32::from((q & 0x0F) as i8 - 8)));
    out.extend(qs.iter().map(|&q| d * f32::from((q >> 4) as i8 - 8)));
}

/// One Q4_1 block: f16 d, f16 m, 16 bytes in Q4_0's nibble order; x = d·q + m.
pub(crate) fn dequantize_q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    out.extend(qs.iter().map(|&q| d * f32::from(q & 0x0F) + m));
    out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

fn push_nibbles(q: &[u8; QK], out: &mut Vec<u8>) {
    out.extend((0..QK / 2).map(|j| q[j] | (q[j + QK / 2] << 4)));
}

/// d = amax/127, q = round(x/d) (half away from zero, as C's `roundf`).
fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

/// d = max/−8 with max the element of largest magnitude (its sign kept),
/// q = min(15, trunc(x/d + 8.5)).
fn quantize_q4_0(x: &[f32], out: &mut Vec<u8>) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = inverse(d);
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    let mut q = [0u8; QK];
    for (q, v) in q.iter_mut().zip(x) {
        // `as` truncates toward zero like C's cast; the argument lies in [0.5, 16.5].
        *q = ((v * id + 8.5) as u8).min(15);
    }
    push_nibbles(&q, out);
}

/// d = (max − min)/15, m = min, q = min(15, trunc((x − min)/d + 0.5)).
fn quantize_q4_1(x: &[f32], out: &mut Vec<u8>) {
    let min = x.iter().fold(f32::MAX, |a, &v| a.min(v));
    let max = x.iter().fold(-f32::MAX, |a, &v| a.max(v));
    let d = (max - min) / 15.0;
    let id = inverse(d);
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
    let mut q = [0u8; QK];
    for (q, v) in q.iter_mut().zip(x) {
        *q = (((v - min) * id + 0.5) as u8).min(15);
    }
    push_nibbles(&q, out);
}
