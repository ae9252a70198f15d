//! Fuzzing the GGUF reader and everything read from a GGUF file: the
//! header and metadata ([`Gguf::parse`]), every tensor's dequantization,
//! the llama config, the tokenizer metadata rebuilt as a tokenizer, and the
//! whole model load. Seeds are files of `GgufWriter`: one with a value of
//! every metadata type and tensors of every supported type, and a small
//! llama model with the tiny vocabulary.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::bytes::{Seed, mutated};
use harness::{Outcome, fuzz, names_file, scratch};
use wapo_core::rl::{Layout, ModelConfig, Named};
use wapo_io::gguf::{Array, GgmlType, Gguf, GgufWriter, Value, load_llama, read_llama_config, read_vocab, write_llama};
use wapo_io::tokenizer::{Tokenizer, tiny_vocab};

/// The name errors are expected to carry.
const NAME: &str = "fuzz.gguf";

fn values(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * scale).collect()
}

fn every_type_file(dir: &Path) -> Vec<u8> {
    let mut w = GgufWriter::new(&dir.join("seed.gguf"));
    w.set("general.architecture", Value::Str("test".into()));
    w.set("u8", Value::U8(7));
    w.set("i8", Value::I8(-7));
    w.set("u16", Value::U16(700));
    w.set("i16", Value::I16(-700));
    w.set("u32", Value::U32(70_000));
    w.set("i32", Value::I32(-70_000));
    w.set("u64", Value::U64(1 << 33));
    w.set("i64", Value::I64(-(1 << 33)));
    w.set("f32", Value::F32(0.5));
    w.set("f64", Value::F64(-0.25));
    w.set("bool", Value::Bool(true));
    w.set("str", Value::Str("héllo".into()));
    w.set("strs", Value::Array(Array::Str(vec!["a".into(), "".into(), "ccc".into()])));
    w.set("ints", Value::Array(Array::I32(vec![1, -2, 3])));
    w.set("nested", Value::Array(Array::Array(vec![Array::U8(vec![1, 2]), Array::Bool(vec![false])])));
    w.set("general.alignment", Value::U32(32));
    w.add_raw("t.empty", vec![0, 4], GgmlType::F32, Vec::new()).expect("seed tensor");
    for (name, ty) in [("f32", GgmlType::F32), ("f16", GgmlType::F16), ("bf16", GgmlType::BF16)] {
        w.add_tensor(&format!("t.{name}"), &[2, 3], &values(6, 0.1), ty).expect("seed tensor");
    }
    for (name, ty) in [("q8_0", GgmlType::Q8_0), ("q4_0", GgmlType::Q4_0), ("q4_1", GgmlType::Q4_1)] {
        w.add_tensor(&format!("t.{name}"), &[2, 32], &values(64, 0.01), ty).expect("seed tensor");
    }
    w.to_bytes().expect("seed file")
}

fn llama_file(dir: &Path) -> Vec<u8> {
    let vocab = tiny_vocab();
    let mut cfg = ModelConfig::llama(vocab.tokens.len(), 16, 32, 1, 4, 2, 32, 10_000.0);
    cfg.tied_embeddings = true;
    cfg.validate().expect("seed config");
    let tensors: Vec<Named> = Layout::new(&cfg)
        .entries
        .iter()
        .map(|e| Named { name: e.name.clone(), shape: e.shape.clone(), data: values(e.range.len(), 0.02) })
        .collect();
    let path = dir.join("llama.gguf");
    let type_of = |name: &str| match name {
        "model.embed_tokens.weight" => GgmlType::Q8_0,
        n if n.contains("mlp") => GgmlType::Q4_1,
        _ => GgmlType::F32,
    };
    write_llama(&path, &cfg, "llama", &tensors, &vocab, type_of).expect("seed model");
    std::fs::read(&path).expect("reading the seed model")
}

/// Where every length, count, type, dimension and offset of a GGUF file
/// starts, walked by the format's definition.
fn boundaries(b: &[u8]) -> Vec<usize> {
    let mut out = vec![0, 4, 8, 16];
    let u32_at = |p: usize| u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
    let u64_at = |p: usize| u64::from_le_bytes(b[p..p + 8].try_into().unwrap()) as usize;
    let (n_tensors, n_kv) = (u64_at(8), u64_at(16));
    let mut p = 24;
    fn value(b: &[u8], ty: u32, p: &mut usize, out: &mut Vec<usize>) {
        out.push(*p);
        let u32_at = |p: usize| u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
        let u64_at = |p: usize| u64::from_le_bytes(b[p..p + 8].try_into().unwrap()) as usize;
        *p += match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => 8 + u64_at(*p),
            _ => {
                let (elem, n) = (u32_at(*p), u64_at(*p + 4));
                out.push(*p + 4);
                *p += 12;
                // A long array's first and last elements stand for the rest.
                for i in 0..n {
                    let mut skipped = Vec::new();
                    value(b, elem, p, if i < 4 || i + 1 == n { out } else { &mut skipped });
                }
                0
            }
        };
    }
    for _ in 0..n_kv {
        value(b, 8, &mut p, &mut out);
        out.push(p);
        let ty = u32_at(p);
        p += 4;
        value(b, ty, &mut p, &mut out);
    }
    for _ in 0..n_tensors {
        value(b, 8, &mut p, &mut out);
        out.push(p);
        let dims = u32_at(p) as usize;
        p += 4;
        for _ in 0..dims {
            out.push(p);
            p += 8;
        }
        out.extend([p, p + 4]);
        p += 12;
    }
    out.push(p);
    out.push(p.div_ceil(32) * 32);
    out
}

fn clear(e: &wapo_io::Error) -> Result<Outcome, String> {
    if e.reason.is_empty() {
        return Err(format!("an error without a reason: {e}"));
    }
    names_file(&e.to_string(), Path::new(NAME))
}

fn check(bytes: &[u8]) -> Result<Outcome, String> {
    let path = PathBuf::from(NAME);
    let g = match Gguf::parse(&path, bytes.to_vec()) {
        Ok(g) => g,
        Err(e) => return clear(&e),
    };
    for t in g.tensors() {
        if let Err(e) = g.tensor_f32(&t.name) {
            clear(&e)?;
        }
    }
    if let Err(e) = read_llama_config(&g) {
        clear(&e)?;
    }
    match read_vocab(&g) {
        Err(e) => {
            clear(&e)?;
        }
        Ok(v) if !v.model.is_empty() => match Tokenizer::from_gguf_vocab(&v, &path) {
            Ok(t) => {
                let ids = t.encode("Hello world, 12 + 30 = 42<|im_end|>").map_err(|e| format!("encoding: {e}"))?;
                t.decode(&ids, false).map_err(|e| format!("decoding its own ids: {e}"))?;
            }
            Err(e) => {
                clear(&e)?;
            }
        },
        Ok(_) => {}
    }
    // The whole load reads a file; it is named like the others.
    let file = scratch("gguf").join(NAME);
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    match load_llama(&file) {
        Ok(m) => {
            if m.tensors.iter().any(|t| t.data.len() != t.shape.iter().product::<usize>()) {
                return Err("a loaded tensor's data does not fill its shape".into());
            }
            Ok(Outcome::Accepted)
        }
        Err(e) => clear(&e),
    }
}

fn seeds() -> Vec<Seed> {
    let dir = scratch("gguf-seeds");
    let seeds = [every_type_file(&dir), llama_file(&dir)];
    let _ = std::fs::remove_dir_all(&dir);
    seeds.into_iter().map(|bytes| Seed { boundaries: boundaries(&bytes), bytes }).collect()
}

#[test]
fn the_seeds_are_valid() {
    for s in seeds() {
        assert!(check(&s.bytes).is_ok(), "{:?}", check(&s.bytes));
        Gguf::parse(Path::new(NAME), s.bytes.clone()).expect("a seed parses");
    }
    let llama = &seeds()[1];
    assert_eq!(check(&llama.bytes), Ok(Outcome::Accepted));
    harness::drop_scratch("gguf");
}

#[test]
fn fuzz_gguf() {
    fuzz("gguf", mutated(seeds()), check);
}
