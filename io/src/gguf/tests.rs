use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use wapo_core::rl::{Layout, ModelConfig, Named};

use super::llama::{permute_rows, unpermute_rows};
use super::quant::{dequantize, quantize};
use super::*;
use crate::Error;
use crate::tokenizer::GgufVocab;

use crate::testing::real_model_path;

/// A fresh path in the temporary directory, unique to this test process and call.
fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("wapo-gguf-{}-{n}-{name}", std::process::id()))
}

fn p() -> &'static Path {
    Path::new("test.gguf")
}

#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: Result<T, Error>, at: Option<&str>, says: &[&str]) -> Error {
    let e = r.expect_err("an error was expected");
    let msg = e.to_string();
    if let Some(at) = at {
        assert_eq!(e.at.as_deref(), Some(at), "error names the wrong place: {msg}");
    }
    for s in says {
        assert!(msg.contains(s), "error `{msg}` does not mention `{s}`");
    }
    e
}

fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| uniform(rng) * scale).collect()
}

// ---------------------------------------------------------------- dequantization by hand

#[test]
fn q8_0_block_by_hand() {
    // d = 0.5 is f16 0x3800; q_j = j − 16, except q_31 = −128 (0x80).
    let mut b = vec![0x00, 0x38];
    b.extend((0..31).map(|j| (j as i8 - 16) as u8));
    b.push(0x80);
    let x = dequantize(p(), "t", GgmlType::Q8_0, 32, 32, &b).unwrap();
    assert_eq!(x[0], -8.0);
    assert_eq!(x[1], -7.5);
    assert_eq!(x[16], 0.0);
    assert_eq!(x[17], 0.5);
    assert_eq!(x[30], 7.0);
    assert_eq!(x[31], -64.0);
}

#[test]
fn q4_0_block_by_hand() {
    // d = 2.0 is f16 0x4000; element j is byte j's low nibble, element j + 16 its high one; x = d·(q − 8).
    let mut b = vec![0x00, 0x40];
    let mut qs = [0x88u8; 16];
    qs[0] = 0x0F; // x0 = 2·(15 − 8) = 14, x16 = 2·(0 − 8) = −16
    qs[1] = 0x80; // x1 = −16, x17 = 0
    qs[2] = 0x9A; // x2 = 2·(10 − 8) = 4, x18 = 2·(9 − 8) = 2
    b.extend_from_slice(&qs);
    let x = dequantize(p(), "t", GgmlType::Q4_0, 32, 32, &b).unwrap();
    let mut want = [0.0f32; 32];
    (want[0], want[16], want[1], want[17], want[2], want[18]) = (14.0, -16.0, -16.0, 0.0, 4.0, 2.0);
    assert_eq!(x, want);
}

#[test]
fn q4_1_block_by_hand() {
    // d = 0.25 (f16 0x3400), m = −1 (f16 0xBC00); x = d·q + m.
    let mut b = vec![0x00, 0x34, 0x00, 0xBC];
    let mut qs = [0u8; 16];
    qs[0] = 0x3C; // x0 = 0.25·12 − 1 = 2, x16 = 0.25·3 − 1 = −0.25
    qs[15] = 0xF0; // x15 = −1, x31 = 0.25·15 − 1 = 2.75
    b.extend_from_slice(&qs);
    let x = dequantize(p(), "t", GgmlType::Q4_1, 32, 32, &b).unwrap();
    let mut want = [-1.0f32; 32];
    (want[0], want[16], want[15], want[31]) = (2.0, -0.25, -1.0, 2.75);
    assert_eq!(x, want);
}

#[test]
fn two_q4_1_blocks_in_order() {
    // Block 0: d = 1, m = 0, all nibbles 1; block 1: d = 0, m = 3 (f16 0x4200).
    let mut b = vec![0x00, 0x3C, 0x00, 0x00];
    b.extend([0x11u8; 16]);
    b.extend([0x00, 0x00, 0x00, 0x42]);
    b.extend([0xFFu8; 16]);
    let x = dequantize(p(), "t", GgmlType::Q4_1, 64, 64, &b).unwrap();
    assert!(x[..32].iter().all(|&v| v == 1.0));
    assert!(x[32..].iter().all(|&v| v == 3.0));
}

#[test]
fn f16_bf16_f32_by_hand() {
    // f16: 1.0, −2.0, 65504 (largest), 2^−24 (smallest subnormal).
    let b = [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00];
    let x = dequantize(p(), "t", GgmlType::F16, 4, 4, &b).unwrap();
    assert_eq!(x, [1.0, -2.0, 65504.0, 2f32.powi(-24)]);
    // bf16 (the top half of an f32): 1.0, −3.0, 3.140625.
    let b = [0x80, 0x3F, 0x40, 0xC0, 0x49, 0x40];
    let x = dequantize(p(), "t", GgmlType::BF16, 3, 3, &b).unwrap();
    assert_eq!(x, [1.0, -3.0, 3.140625]);
    let b = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0];
    assert_eq!(dequantize(p(), "t", GgmlType::F32, 2, 2, &b).unwrap(), [1.0, -2.0]);
}

#[test]
fn partial_blocks_and_other_types_are_refused() {
    let b = vec![0u8; 34];
    expect_err(dequantize(p(), "w", GgmlType::Q8_0, 16, 32, &b), Some("w"), &["row length 16", "Q8_0", "32"]);
    expect_err(quantize(p(), "w", GgmlType::Q4_1, 48, &[0.0; 48]), Some("w"), &["row length 48"]);
    expect_err(dequantize(p(), "w", GgmlType::Q6_K, 256, 256, &[0; 210]), Some("w"), &["Q6_K", "not supported"]);
    expect_err(dequantize(p(), "w", GgmlType(99), 1, 1, &[0; 4]), Some("w"), &["99"]);
    expect_err(dequantize(p(), "w", GgmlType::Q8_0, 32, 32, &b[..33]), Some("w"), &["34 bytes", "33"]);
}

// ---------------------------------------------------------------- quantizers

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gguf/quantize_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn quantizers_match_gguf_py() {
    let r = reference();
    let x: Vec<f32> = r["input"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        let want = hex(r[ty.name().unwrap()].as_str().unwrap());
        assert_eq!(quantize(p(), "t", ty, x.len(), &x).unwrap(), want, "{ty}");
    }
}

fn f16_round(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

#[test]
fn quantize_dequantize_error_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for scale in [1e-3f32, 0.05, 1.0, 300.0] {
        let mut x = random(&mut rng, 32 * 64, scale);
        x[5] = 0.0;
        x[32..64].fill(0.0); // an all-zero block: d = 0
        x[64..96].iter_mut().for_each(|v| *v = v.abs() + scale); // all positive, min far from 0
        let eps = 1e-6 * scale;

        let y = dequantize(
            p(),
            "t",
            GgmlType::Q8_0,
            x.len(),
            x.len(),
            &quantize(p(), "t", GgmlType::Q8_0, x.len(), &x).unwrap(),
        )
        .unwrap();
        for (b, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let d = xb.iter().fold(0.0f32, |a, v| a.max(v.abs())) / 127.0;
            let bound = d / 2.0 + 127.0 * (f16_round(d) - d).abs() + eps;
            for (v, w) in xb.iter().zip(yb) {
                assert!((v - w).abs() <= bound, "Q8_0 scale {scale} block {b}: {v} → {w}, bound {bound}");
            }
        }

        let y = dequantize(
            p(),
            "t",
            GgmlType::Q4_0,
            x.len(),
            x.len(),
            &quantize(p(), "t", GgmlType::Q4_0, x.len(), &x).unwrap(),
        )
        .unwrap();
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let max = xb.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let d = max / -8.0;
            let d16 = f16_round(d);
            for (v, w) in xb.iter().zip(yb) {
                // x/d ∈ [−8, 8]; the top level, 8, is clipped to 7 (a full step).
                let step = if d != 0.0 && v / d > 7.5 { d.abs() } else { d.abs() / 2.0 };
                let bound = step + 8.0 * (d16 - d).abs() + eps;
                assert!((v - w).abs() <= bound, "Q4_0 scale {scale}: {v} → {w}, bound {bound}");
            }
        }

        let y = dequantize(
            p(),
            "t",
            GgmlType::Q4_1,
            x.len(),
            x.len(),
            &quantize(p(), "t", GgmlType::Q4_1, x.len(), &x).unwrap(),
        )
        .unwrap();
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let min = xb.iter().fold(f32::MAX, |a, &v| a.min(v));
            let max = xb.iter().fold(-f32::MAX, |a, &v| a.max(v));
            let d = (max - min) / 15.0;
            let bound = d / 2.0 + 15.0 * (f16_round(d) - d).abs() + (f16_round(min) - min).abs() + eps;
            for (v, w) in xb.iter().zip(yb) {
                assert!((v - w).abs() <= bound, "Q4_1 scale {scale}: {v} → {w}, bound {bound}");
            }
        }
    }
}

#[test]
fn quantizers_refuse_non_finite_values() {
    let mut x = vec![0.5f32; 32];
    x[3] = f32::NAN;
    expect_err(quantize(p(), "w", GgmlType::Q8_0, 32, &x), Some("w"), &["element 3"]);
}

// ---------------------------------------------------------------- writer and reader

#[test]
fn writer_bytes_by_hand() {
    let mut w = GgufWriter::new(p());
    w.set("a", Value::U32(7));
    w.add_tensor("t", &[2], &[1.0, -2.0], GgmlType::F32).unwrap();
    let mut want: Vec<u8> = Vec::new();
    want.extend(b"GGUF");
    want.extend([3, 0, 0, 0]); // version
    want.extend([1, 0, 0, 0, 0, 0, 0, 0]); // tensor count
    want.extend([1, 0, 0, 0, 0, 0, 0, 0]); // metadata count
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, b'a']); // key
    want.extend([4, 0, 0, 0, 7, 0, 0, 0]); // type u32, value 7
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, b't']); // tensor name
    want.extend([1, 0, 0, 0]); // one dimension
    want.extend([2, 0, 0, 0, 0, 0, 0, 0]); // of 2
    want.extend([0, 0, 0, 0]); // F32
    want.extend([0; 8]); // offset 0
    assert_eq!(want.len(), 74);
    want.resize(96, 0); // the data section starts on a multiple of 32
    want.extend([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]);
    want.resize(128, 0);
    assert_eq!(w.to_bytes().unwrap(), want);
}

fn all_value_kinds() -> Vec<(&'static str, Value)> {
    vec![
        ("k.u8", Value::U8(200)),
        ("k.i8", Value::I8(-100)),
        ("k.u16", Value::U16(60000)),
        ("k.i16", Value::I16(-30000)),
        ("k.u32", Value::U32(4_000_000_000)),
        ("k.i32", Value::I32(-2_000_000_000)),
        ("k.u64", Value::U64(u64::MAX)),
        ("k.i64", Value::I64(i64::MIN)),
        ("k.f32", Value::F32(1.5e-7)),
        ("k.f64", Value::F64(-2.5e300)),
        ("k.bool", Value::Bool(true)),
        ("k.str", Value::Str("héllo ✓".into())),
        ("k.empty", Value::Str(String::new())),
        ("a.u8", Value::Array(Array::U8(vec![1, 2, 255]))),
        ("a.i8", Value::Array(Array::I8(vec![-1, 0, 1]))),
        ("a.u16", Value::Array(Array::U16(vec![65535]))),
        ("a.i16", Value::Array(Array::I16(vec![-2, 3]))),
        ("a.u32", Value::Array(Array::U32(vec![7, 8]))),
        ("a.i32", Value::Array(Array::I32(vec![-7, 8]))),
        ("a.u64", Value::Array(Array::U64(vec![1 << 40]))),
        ("a.i64", Value::Array(Array::I64(vec![-(1 << 40)]))),
        ("a.f32", Value::Array(Array::F32(vec![0.25, -1e30]))),
        ("a.f64", Value::Array(Array::F64(vec![1e-300]))),
        ("a.bool", Value::Array(Array::Bool(vec![true, false]))),
        ("a.str", Value::Array(Array::Str(vec!["x".into(), String::new(), "z z".into()]))),
        ("a.empty", Value::Array(Array::F32(vec![]))),
        (
            "a.nested",
            Value::Array(Array::Array(vec![
                Array::Str(vec!["a".into()]),
                Array::Array(vec![Array::U8(vec![9])]),
                Array::I32(vec![]),
            ])),
        ),
    ]
}

#[test]
fn writer_reader_round_trip() {
    for alignment in [None, Some(64u32), Some(8)] {
        let path = tmp("round-trip.gguf");
        let mut w = GgufWriter::new(&path);
        for (k, v) in all_value_kinds() {
            w.set(k, v);
        }
        if let Some(a) = alignment {
            w.set("general.alignment", Value::U32(a));
        }
        let exact: Vec<f32> = (0..24).map(|i| (i as f32 - 10.0) * 0.125).collect(); // exact in f16 and bf16
        w.add_tensor("f32", &[2, 3, 4], &exact, GgmlType::F32).unwrap();
        w.add_tensor("f16", &[4, 6], &exact, GgmlType::F16).unwrap();
        w.add_tensor("bf16", &[24], &exact, GgmlType::BF16).unwrap();
        let q: Vec<f32> = (0..64).map(|i| ((i * 37) % 64) as f32 - 31.0).collect();
        w.add_tensor("q8", &[2, 32], &q, GgmlType::Q8_0).unwrap();
        w.add_tensor("scalar", &[], &[42.0], GgmlType::F32).unwrap();
        w.write().unwrap();

        let g = Gguf::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.alignment, alignment.map_or(32, |a| a as usize));
        for (k, v) in all_value_kinds() {
            assert_eq!(g.get(k), Some(&v), "{k}");
        }
        let names: Vec<&str> = g.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["f32", "f16", "bf16", "q8", "scalar"]);
        for t in g.tensors() {
            assert_eq!(t.offset % g.alignment as u64, 0, "{}", t.name);
        }
        assert_eq!(g.tensor_info("f32").unwrap().dims, [4, 3, 2]);
        assert_eq!(g.tensor_f32("f32").unwrap(), (vec![2, 3, 4], exact.clone()));
        assert_eq!(g.tensor_f32("f16").unwrap(), (vec![4, 6], exact.clone()));
        assert_eq!(g.tensor_f32("bf16").unwrap(), (vec![24], exact.clone()));
        // Integers up to 31 with amax 32 or 31: d = amax/127, every value within d/2.
        let (shape, y) = g.tensor_f32("q8").unwrap();
        assert_eq!(shape, [2, 32]);
        assert!(q.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 32.0 / 127.0 / 2.0 * 1.01));
        assert_eq!(g.tensor_f32("scalar").unwrap(), (vec![], vec![42.0]));
        expect_err(g.tensor_f32("nope"), Some("nope"), &["no such tensor"]);
    }
}

#[test]
fn typed_getters_name_the_key() {
    let mut w = GgufWriter::new(p());
    w.set("n", Value::U64(12));
    w.set("big", Value::U64(1 << 40));
    w.set("neg", Value::I32(-1));
    w.set("x", Value::F64(0.5));
    w.set("s", Value::Str("v".into()));
    w.set("toks", Value::Array(Array::Str(vec!["a".into()])));
    w.set("types", Value::Array(Array::U8(vec![1, 6])));
    let g = Gguf::parse(p(), w.to_bytes().unwrap()).unwrap();
    assert_eq!(g.get_u32("n").unwrap(), 12);
    assert_eq!(g.get_f32("x").unwrap(), 0.5);
    assert_eq!(g.get_str("s").unwrap(), "v");
    assert_eq!(g.get_str_array("toks").unwrap(), ["a"]);
    assert_eq!(g.get_i32_array("types").unwrap(), [1, 6]);
    assert_eq!(g.opt("absent", Gguf::get_u32).unwrap(), None);
    expect_err(g.get_u32("big"), Some("big"), &["out of the range"]);
    expect_err(g.get_u32("neg"), Some("neg"), &["out of the range"]);
    expect_err(g.get_u32("s"), Some("s"), &["expected an integer", "string"]);
    expect_err(g.get_str("n"), Some("n"), &["expected a string", "u64"]);
    expect_err(g.get_str_array("types"), Some("types"), &["array of u8"]);
    expect_err(g.get_f32("absent"), Some("absent"), &["missing"]);
    expect_err(g.opt("s", Gguf::get_bool), Some("s"), &["expected a bool"]);
}

// ---------------------------------------------------------------- malformed files

fn header(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(version.to_le_bytes());
    b.extend(tensors.to_le_bytes());
    b.extend(kvs.to_le_bytes());
    b
}

fn one_tensor_file() -> Vec<u8> {
    let mut w = GgufWriter::new(p());
    w.set("general.name", Value::Str("x".into()));
    w.add_tensor("w", &[2, 32], &[0.5; 64], GgmlType::F32).unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn bad_magic() {
    let mut b = one_tensor_file();
    b[..4].copy_from_slice(b"GGML");
    expect_err(Gguf::parse(p(), b), None, &["not a GGUF file"]);
    expect_err(Gguf::parse(p(), b"GG".to_vec()), None, &["not a GGUF file"]);
}

#[test]
fn unsupported_versions() {
    expect_err(Gguf::parse(p(), header(4, 0, 0)), None, &["unsupported GGUF version 4"]);
    expect_err(Gguf::parse(p(), header(1, 0, 0)), None, &["version 1"]);
    expect_err(Gguf::parse(p(), header(3u32.swap_bytes(), 0, 0)), None, &["big-endian"]);
    // Version 2 has the same layout as 3.
    let mut b = one_tensor_file();
    b[4] = 2;
    assert_eq!(Gguf::parse(p(), b).unwrap().version, 2);
}

#[test]
fn truncated_header() {
    let b = one_tensor_file();
    // Cut inside the value's length, the tensor's name, its dims, its offset.
    for cut in [50, 60, 80, 95] {
        expect_err(Gguf::parse(p(), b[..cut].to_vec()), None, &["truncated"]);
    }
    expect_err(Gguf::parse(p(), b[..10].to_vec()), None, &["truncated"]);
    // So short that the one tensor's info cannot fit.
    expect_err(Gguf::parse(p(), b[..30].to_vec()), None, &["claims 1 tensors", "14 bytes left"]);
}

#[test]
fn truncated_tensor_data() {
    let b = one_tensor_file();
    let cut = b.len() - 1; // the data is 256 bytes, a multiple of 32, so the last byte is data
    expect_err(Gguf::parse(p(), b[..cut].to_vec()), Some("w"), &["past the end"]);
}

#[test]
fn counts_and_lengths_beyond_the_file() {
    expect_err(Gguf::parse(p(), header(3, 1_000_000_000_000, 0)), None, &["claims 1000000000000 tensors"]);
    expect_err(Gguf::parse(p(), header(3, 0, 1_000_000_000_000)), None, &["claims 1000000000000 metadata entries"]);
    // A key of 2^60 bytes.
    let mut b = header(3, 0, 1);
    b.extend((1u64 << 60).to_le_bytes());
    b.extend([0; 64]);
    expect_err(Gguf::parse(p(), b), None, &["1152921504606846976 bytes"]);
    // A string value of 2^60 bytes.
    let mut b = header(3, 0, 1);
    b.extend(1u64.to_le_bytes());
    b.push(b'k');
    b.extend(8u32.to_le_bytes());
    b.extend((1u64 << 60).to_le_bytes());
    b.extend([0; 64]);
    expect_err(Gguf::parse(p(), b), Some("k"), &["1152921504606846976 bytes"]);
    // An array of 10^12 u64.
    let mut b = header(3, 0, 1);
    b.extend(1u64.to_le_bytes());
    b.push(b'k');
    b.extend(9u32.to_le_bytes());
    b.extend(10u32.to_le_bytes());
    b.extend(1_000_000_000_000u64.to_le_bytes());
    b.extend([0; 64]);
    expect_err(Gguf::parse(p(), b), Some("k"), &["claims 1000000000000 array elements"]);
    // A tensor whose dims multiply past u64, and one far beyond the end.
    for (dims, says) in [(vec![1u64 << 32, 1 << 32, 1 << 32], "overflow"), (vec![1 << 20, 1 << 20], "past the end")] {
        let mut w = GgufWriter::new(p());
        w.add_raw("big", dims, GgmlType::F32, vec![0; 64]).unwrap();
        expect_err(Gguf::parse(p(), w.to_bytes().unwrap()), Some("big"), &[says]);
    }
}

#[test]
fn other_malformed_headers() {
    // Too deeply nested arrays.
    let mut b = header(3, 0, 1);
    b.extend(1u64.to_le_bytes());
    b.push(b'k');
    b.extend(9u32.to_le_bytes());
    for _ in 0..40 {
        b.extend(9u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
    }
    b.extend([0; 64]);
    expect_err(Gguf::parse(p(), b), Some("k"), &["nested deeper"]);
    // An unknown value type, a bool byte that is neither 0 nor 1.
    for (ty, byte, says) in [(13u32, 0u8, "unknown metadata value type 13"), (7, 2, "bool byte 2")] {
        let mut b = header(3, 0, 1);
        b.extend(1u64.to_le_bytes());
        b.push(b'k');
        b.extend(ty.to_le_bytes());
        b.extend([byte; 16]);
        expect_err(Gguf::parse(p(), b), Some("k"), &[says]);
    }
    // Duplicate keys, a bad alignment, a misaligned offset, five dimensions.
    let mut b = header(3, 0, 2);
    for _ in 0..2 {
        b.extend(1u64.to_le_bytes());
        b.push(b'k');
        b.extend(4u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
    }
    expect_err(Gguf::parse(p(), b), Some("k"), &["duplicate"]);
    let mut w = GgufWriter::new(p());
    w.set("general.alignment", Value::U32(24));
    expect_err(w.to_bytes(), Some("general.alignment"), &["power of two"]);
    let mut b = one_tensor_file();
    let pos = find_offset_field(&b);
    b[pos] = 4;
    expect_err(Gguf::parse(p(), b), Some("w"), &["offset 4", "multiple of 32"]);
    let mut w = GgufWriter::new(p());
    w.add_raw("d5", vec![1; 5], GgmlType::F32, vec![0; 4]).unwrap();
    expect_err(Gguf::parse(p(), w.to_bytes().unwrap()), Some("d5"), &["5 dimensions"]);
}

/// The offset field of the one tensor of [`one_tensor_file`]: after its name
/// "w", n_dims 2, dims 32 and 2, type F32.
fn find_offset_field(b: &[u8]) -> usize {
    let mut info = 1u64.to_le_bytes().to_vec();
    info.push(b'w');
    info.extend(2u32.to_le_bytes());
    info.extend(32u64.to_le_bytes());
    info.extend(2u64.to_le_bytes());
    info.extend(0u32.to_le_bytes());
    b.windows(info.len()).position(|w| w == info).unwrap() + info.len()
}

#[test]
fn unknown_and_unsupported_tensor_types() {
    let mut w = GgufWriter::new(p());
    w.add_raw("odd", vec![4], GgmlType(99), vec![0; 16]).unwrap();
    w.add_raw("k6", vec![256], GgmlType::Q6_K, vec![0; 210]).unwrap();
    // The file parses; only reading the tensors fails, naming each.
    let g = Gguf::parse(p(), w.to_bytes().unwrap()).unwrap();
    expect_err(g.tensor_f32("odd"), Some("odd"), &["unknown ggml tensor type id 99"]);
    expect_err(g.tensor_f32("k6"), Some("k6"), &["Q6_K", "not supported"]);
    // A known type is sized even when it cannot be read: 256 Q6_K values take 210 bytes, not 10.
    w.add_raw("short", vec![256], GgmlType::Q6_K, vec![0; 10]).unwrap();
    expect_err(Gguf::parse(p(), w.to_bytes().unwrap()), Some("short"), &["+ 210 bytes", "past the end"]);
    // A Q8_0 tensor whose rows are 16 long.
    let mut w = GgufWriter::new(p());
    w.add_raw("rows", vec![16, 2], GgmlType::Q8_0, vec![0; 34]).unwrap();
    let g = Gguf::parse(p(), w.to_bytes().unwrap()).unwrap();
    expect_err(g.tensor_f32("rows"), Some("rows"), &["row length 16"]);
}

// ---------------------------------------------------------------- rotary row order

#[test]
fn permutation_against_the_index_formula() {
    // rows = 8, n_head = 2: the converter's reshape(2, 2, 2, cols).swapaxes(1, 2)
    // takes, per head of 4 rows, HF rows (0, 2, 1, 3).
    let cols = 3;
    let hf: Vec<f32> = (0..8 * cols).map(|i| ((i / cols) * 10 + i % cols) as f32).collect();
    let gguf = permute_rows(&hf, cols, 2);
    let rows: Vec<usize> = gguf.chunks(cols).map(|r| r[0] as usize / 10).collect();
    assert_eq!(rows, [0, 2, 1, 3, 4, 6, 5, 7]);
    for (r, row) in gguf.chunks(cols).enumerate() {
        assert_eq!(row, &hf[rows[r] * cols..(rows[r] + 1) * cols]);
    }
    assert_eq!(unpermute_rows(&gguf, cols, 2), hf);
    // One head of 6 rows: GGUF row 2i + j is HF row 3j + i.
    let hf: Vec<f32> = (0..6).map(|i| i as f32).collect();
    assert_eq!(permute_rows(&hf, 1, 1), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(unpermute_rows(&permute_rows(&hf, 1, 1), 1, 1), hf);
}

// ---------------------------------------------------------------- llama models

fn tiny(qkv_bias: bool, tied: bool) -> ModelConfig {
    let mut c = ModelConfig::llama(64, 32, 64, 2, 4, 2, 96, 500_000.0);
    c.norm_eps = 1e-6;
    c.qkv_bias = qkv_bias;
    c.tied_embeddings = tied;
    c.validate().unwrap();
    c
}

/// Random tensors for `cfg`, the 1-D ones (norm gains, biases) random too so
/// that a mix-up between them shows.
fn tiny_tensors(cfg: &ModelConfig, seed: u64) -> Vec<Named> {
    let layout = Layout::new(cfg);
    let mut named = layout.named(&layout.init(cfg, seed), "");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for t in named.iter_mut().filter(|t| t.shape.len() == 1) {
        t.data = random(&mut rng, t.data.len(), 1.0);
    }
    named
}

fn tiny_vocab(n: usize) -> GgufVocab {
    GgufVocab {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens: (0..n).map(|i| format!("t{i}")).collect(),
        merges: vec!["t 1".into(), "t1 2".into()],
        token_types: (0..n).map(|i| if i < 3 { 3 } else { 1 }).collect(),
        bos: Some(1),
        eos: Some(2),
        unk: None,
        pad: Some(2),
        add_bos: Some(false),
        chat_template: Some("{{ messages }}".into()),
    }
}

fn same_vocab(a: &GgufVocab, b: &GgufVocab) {
    assert_eq!(a.model, b.model);
    assert_eq!(a.pre, b.pre);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.merges, b.merges);
    assert_eq!(a.token_types, b.token_types);
    assert_eq!((a.bos, a.eos, a.unk, a.pad, a.add_bos), (b.bos, b.eos, b.unk, b.pad, b.add_bos));
    assert_eq!(a.chat_template, b.chat_template);
}

fn f32_all(_: &str) -> GgmlType {
    GgmlType::F32
}

#[test]
fn write_llama_load_llama_exact_in_f32() {
    for (arch, bias, tied) in
        [("llama", false, false), ("llama", true, true), ("qwen2", true, true), ("qwen2", true, false)]
    {
        let cfg = tiny(bias, tied);
        let tensors = tiny_tensors(&cfg, 3);
        let path = tmp("tiny-f32.gguf");
        write_llama(&path, &cfg, arch, &tensors, &tiny_vocab(64), f32_all).unwrap();
        let m = load_llama(&path).unwrap();
        let g = Gguf::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(m.architecture, arch);
        assert_eq!(m.config, cfg, "{arch}");
        assert_eq!(m.tensors, tensors, "{arch}");
        same_vocab(&m.vocab, &tiny_vocab(64));

        // What is on disk: GGUF names, the rotary order for llama only.
        let q = &tensors.iter().find(|t| t.name == "model.layers.1.self_attn.q_proj.weight").unwrap().data;
        let k = &tensors.iter().find(|t| t.name == "model.layers.0.self_attn.k_proj.weight").unwrap().data;
        let (shape, q_disk) = g.tensor_f32("blk.1.attn_q.weight").unwrap();
        let (_, k_disk) = g.tensor_f32("blk.0.attn_k.weight").unwrap();
        assert_eq!(shape, [64, 64]);
        if arch == "llama" {
            assert_eq!(q_disk, permute_rows(q, 64, 4));
            assert_eq!(k_disk, permute_rows(k, 64, 2));
            assert_ne!(&q_disk, q);
        } else {
            assert_eq!(&q_disk, q);
            assert_eq!(&k_disk, k);
        }
        assert_eq!(g.get_str("general.architecture").unwrap(), arch);
        assert_eq!(g.get_u32(&format!("{arch}.attention.head_count_kv")).unwrap(), 2);
        assert_eq!(g.tensor_info("output.weight").is_none(), tied);
    }
}

#[test]
fn write_llama_load_llama_quantized_within_bounds() {
    let cfg = tiny(false, false);
    let tensors = tiny_tensors(&cfg, 4);
    for ty in [GgmlType::Q8_0, GgmlType::Q4_1] {
        let path = tmp("tiny-q.gguf");
        let type_of = |name: &str| if name.ends_with("norm.weight") { GgmlType::F32 } else { ty };
        write_llama(&path, &cfg, "llama", &tensors, &tiny_vocab(64), type_of).unwrap();
        let m = load_llama(&path).unwrap();
        let g = Gguf::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(m.config, cfg);
        assert_eq!(g.tensor_info("blk.0.ffn_up.weight").unwrap().ggml_type, ty);
        assert_eq!(g.tensor_info("blk.0.attn_norm.weight").unwrap().ggml_type, GgmlType::F32);
        for (a, b) in tensors.iter().zip(&m.tensors) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            if a.name.ends_with("norm.weight") {
                assert_eq!(a.data, b.data, "{}", a.name);
                continue;
            }
            // Blocks lie within rows and the rotary order moves whole rows, so
            // the HF layout's 32-chunks are the file's blocks. A full step
            // bounds the error generously (half a step plus f16 roundoff).
            for (xa, xb) in a.data.chunks(32).zip(b.data.chunks(32)) {
                let (min, max) = xa.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let amax = min.abs().max(max.abs());
                let bound = if ty == GgmlType::Q8_0 { amax / 127.0 } else { (max - min) / 15.0 + 1e-3 * amax };
                for (u, v) in xa.iter().zip(xb) {
                    assert!((u - v).abs() <= bound, "{ty} {}: {u} → {v}, bound {bound}", a.name);
                }
            }
        }
    }
}

/// Copies the GGUF file at `from` to a new file, letting `edit` change the
/// metadata and tensors (raw) on the way.
fn rewrite(
    from: &Path,
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>),
) -> PathBuf {
    let g = Gguf::read(from).unwrap();
    let mut meta = g.metadata().to_vec();
    let mut tensors: Vec<_> = g
        .tensors()
        .iter()
        .map(|t| {
            let (_, b) = g.tensor_bytes(&t.name).unwrap();
            (t.name.clone(), t.dims.clone(), t.ggml_type, b.to_vec())
        })
        .collect();
    edit(&mut meta, &mut tensors);
    let to = tmp("edited.gguf");
    let mut w = GgufWriter::new(&to);
    for (k, v) in meta {
        w.set(k, v);
    }
    for (name, dims, ty, bytes) in tensors {
        w.add_raw(&name, dims, ty, bytes).unwrap();
    }
    w.write().unwrap();
    to
}

fn load_edited(
    base: &Path,
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>),
) -> Result<GgufModel, Error> {
    let path = rewrite(base, edit);
    let r = load_llama(&path);
    std::fs::remove_file(&path).unwrap();
    r
}

fn set_meta(meta: &mut [(String, Value)], key: &str, v: Value) {
    meta.iter_mut().find(|(k, _)| k == key).unwrap().1 = v;
}

#[test]
fn load_llama_refuses_bad_models() {
    let cfg = tiny(false, true);
    let base = tmp("base.gguf");
    write_llama(&base, &cfg, "llama", &tiny_tensors(&cfg, 5), &tiny_vocab(64), f32_all).unwrap();
    assert!(load_llama(&base).is_ok());

    let e = load_edited(&base, |m, _| set_meta(m, "general.architecture", Value::Str("gpt2".into())));
    expect_err(e, Some("general.architecture"), &["`gpt2`", "not supported"]);

    // A tensor whose shape does not match the config: attn_k with 4 heads' rows instead of 2.
    let e = load_edited(&base, |_, t| {
        let k = t.iter_mut().find(|t| t.0 == "blk.1.attn_k.weight").unwrap();
        k.1 = vec![64, 64];
        k.3 = vec![0; 64 * 64 * 4];
    });
    expect_err(e, Some("blk.1.attn_k.weight"), &["[64, 64] in the file", "[32, 64] expected"]);

    let e = load_edited(&base, |_, t| t.retain(|t| t.0 != "blk.1.ffn_up.weight"));
    expect_err(e, Some("blk.1.ffn_up.weight"), &["missing", "model.layers.1.mlp.up_proj.weight"]);

    let e = load_edited(&base, |_, t| t.push(("rope_freqs.weight".into(), vec![8], GgmlType::F32, vec![0; 32])));
    expect_err(e, Some("rope_freqs.weight"), &["not supported"]);

    let e = load_edited(&base, |_, t| {
        t.push(("blk.7.attn_q.weight".into(), vec![64, 64], GgmlType::F32, vec![0; 64 * 256]))
    });
    expect_err(e, Some("blk.7.attn_q.weight"), &["unexpected tensor"]);

    let e = load_edited(&base, |m, _| set_meta(m, "llama.rope.dimension_count", Value::U32(8)));
    expect_err(e, Some("llama.rope.dimension_count"), &["8 rotary dimensions", "head size is 16"]);

    let e = load_edited(&base, |m, _| set_meta(m, "llama.vocab_size", Value::U32(65)));
    expect_err(e, Some("llama.vocab_size"), &["64 tokens"]);

    let e = load_edited(&base, |m, _| m.retain(|(k, _)| k != "llama.block_count"));
    expect_err(e, Some("llama.block_count"), &["missing"]);

    let e = load_edited(&base, |m, _| set_meta(m, "llama.attention.head_count_kv", Value::U32(3)));
    expect_err(e, None, &["invalid model", "kv_heads"]);

    // Without head_count_kv and vocab_size: kv heads = heads, vocab = the token count.
    let m = load_edited(&base, |m, t| {
        m.retain(|(k, _)| k != "llama.attention.head_count_kv" && k != "llama.vocab_size");
        for name in ["blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight"] {
            let k = t.iter_mut().find(|t| t.0 == name).unwrap();
            k.1 = vec![64, 64];
            k.3 = vec![0; 64 * 64 * 4];
        }
    })
    .unwrap();
    assert_eq!((m.config.kv_heads, m.config.vocab), (4, 64));
    std::fs::remove_file(&base).unwrap();
}

#[test]
fn write_llama_refuses_what_it_cannot_write() {
    let cfg = tiny(false, false);
    let tensors = tiny_tensors(&cfg, 6);
    let path = tmp("never.gguf");
    let v = tiny_vocab(64);
    expect_err(write_llama(&path, &cfg, "gpt2", &tensors, &v, f32_all), Some("general.architecture"), &["gpt2"]);
    expect_err(write_llama(&path, &cfg, "qwen2", &tensors, &v, f32_all), Some("general.architecture"), &["biases"]);
    expect_err(
        write_llama(&path, &cfg, "llama", &tensors[1..], &v, f32_all),
        Some("model.embed_tokens.weight"),
        &["missing"],
    );
    expect_err(
        write_llama(&path, &cfg, "llama", &tensors, &tiny_vocab(63), f32_all),
        Some("tokenizer.ggml.tokens"),
        &["63"],
    );
    let mut bad = tensors.clone();
    bad[1].shape = vec![1, 64];
    expect_err(
        write_llama(&path, &cfg, "llama", &bad, &v, f32_all),
        Some("model.layers.0.input_layernorm.weight"),
        &["shape"],
    );
    assert!(!path.exists());
}

// ---------------------------------------------------------------- the real SmolLM2 file

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gguf/smollm2_135m_q4_1.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The HF row of GGUF row `r` of a rotary tensor with heads of `d` rows
/// (GGUF row 2i + j within a head is HF row j·d/2 + i).
fn hf_row(r: usize, d: usize) -> usize {
    let (h, w) = (r / d, r % d);
    h * d + (w % 2) * (d / 2) + w / 2
}

#[test]
fn real_smollm2_config_vocab_and_tensors() {
    let Some(path) = real_model_path() else { return };
    let m = load_llama(&path).unwrap();
    let mut want = ModelConfig::llama(49152, 8192, 576, 30, 9, 3, 1536, 100_000.0);
    want.tied_embeddings = true;
    want.norm_eps = 1e-5;
    assert_eq!(m.config, want);
    assert_eq!(m.architecture, "llama");
    assert_eq!(m.vocab.model, "gpt2");
    assert_eq!(m.vocab.pre.as_deref(), Some("smollm"));
    assert_eq!(m.vocab.tokens.len(), 49152);
    assert_eq!(m.vocab.tokens[1], "<|im_start|>");
    assert_eq!((m.vocab.bos, m.vocab.eos), (Some(1), Some(2)));
    assert_eq!(m.vocab.add_bos, Some(false));
    assert!(m.vocab.chat_template.as_deref().unwrap().contains("<|im_start|>"));
    assert_eq!(m.tensors.len(), Layout::new(&want).entries.len());

    let fix = fixture();
    let hf_name = |n: &str| super::llama::gguf_to_hf(n).unwrap();
    for (name, f) in fix["tensors"].as_object().unwrap() {
        let t = m.tensors.iter().find(|t| t.name == hf_name(name)).unwrap();
        let shape: Vec<usize> = f["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(t.shape, shape, "{name}");
        let cols = *shape.last().unwrap();
        let sum: f64 = t.data.iter().map(|&x| f64::from(x)).sum();
        let abs: f64 = t.data.iter().map(|&x| f64::from(x).abs()).sum();
        let want_sum = f["sum"].as_f64().unwrap();
        assert!((sum - want_sum).abs() <= 1e-9 * abs, "{name}: sum {sum}, gguf-py {want_sum}");
        // Head size 64 for both q (9 heads) and k (3 heads).
        let rotary = name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight");
        for (r, vals) in f["rows"].as_object().unwrap() {
            let r: usize = r.parse().unwrap();
            let ours = if rotary { hf_row(r, 64) } else { r };
            let want: Vec<f32> = vals.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(&t.data[ours * cols..ours * cols + 16], &want[..], "{name} GGUF row {r} (ours {ours})");
        }
    }
    // The row map used above, worked by hand: GGUF row 1 is HF row 32, row 37 (= 2·18 + 1) is HF 32 + 18.
    assert_eq!((hf_row(0, 64), hf_row(1, 64), hf_row(37, 64), hf_row(575, 64)), (0, 32, 50, 575));
}

#[test]
fn real_smollm2_header() {
    let Some(path) = real_model_path() else { return };
    let g = Gguf::read(&path).unwrap();
    assert_eq!((g.version, g.alignment, g.tensors().len()), (3, 32, 272));
    let embd = g.tensor_info("token_embd.weight").unwrap();
    assert_eq!(
        (embd.ggml_type, embd.dims.as_slice(), embd.shape()),
        (GgmlType::Q8_0, &[576u64, 49152][..], vec![49152, 576])
    );
    assert_eq!(g.tensor_info("blk.0.ffn_down.weight").unwrap().ggml_type, GgmlType::Q4_1);
    assert_eq!(g.get_str_array("tokenizer.ggml.merges").unwrap().len(), 48900);
}
