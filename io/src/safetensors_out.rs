//! The one writer of f32 safetensors files, for Hugging Face weights and
//! training checkpoints alike: the JSON header, then each tensor's
//! little-endian bytes streamed through a small buffer, so that a save holds
//! no second copy of the weights (at 135M parameters and both AdamW moments a
//! checkpoint is 1.6 GB; building it in memory first cost twice that again).
//! The write is atomic ([`crate::atomic`]).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::atomic;
use crate::error::{Error, Result};

/// One tensor to write: `data` holds the product of `shape` values, row-major.
#[derive(Clone, Copy, Debug)]
pub struct F32Tensor<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// Writes `tensors` to `path`, back to back in the given order, with
/// `metadata` as the header's `__metadata__` (none when empty).
pub fn write_f32(path: &Path, tensors: &[F32Tensor<'_>], metadata: &BTreeMap<String, String>) -> Result<()> {
    let header = header(path, tensors, metadata)?;
    atomic::write_with(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let mut buf = Vec::with_capacity(4 << 14);
        for t in tensors {
            for chunk in t.data.chunks(1 << 14) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })
}

fn header(path: &Path, tensors: &[F32Tensor<'_>], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut seen = HashSet::with_capacity(tensors.len());
    let mut offset = 0usize;
    for t in tensors {
        if t.name == "__metadata__" || !seen.insert(t.name) {
            return Err(Error::at(path, t.name, "given twice, or named like the header's metadata"));
        }
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.data.len()) {
            let got = t.data.len();
            return Err(Error::at(path, t.name, format!("shape {:?} does not hold its {got} values", t.shape)));
        }
        let end = offset + 4 * t.data.len();
        header.insert(t.name.into(), json!({ "dtype": "F32", "shape": t.shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).map_err(|e| Error::file(path, e.to_string()))?;
    // The format pads the header with spaces so that the data starts 8-aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::{Dtype, SafeTensors};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wapo-st-out-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("t.safetensors")
    }

    /// Read back by the safetensors crate, an independent parser.
    #[test]
    fn the_safetensors_crate_reads_back_names_shapes_values_and_metadata() {
        let path = scratch("roundtrip");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        let b = [f32::MIN_POSITIVE, -0.0, 3.25];
        let tensors = [
            F32Tensor { name: "z.first", shape: &[2, 3], data: &a },
            F32Tensor { name: "a.second", shape: &[3], data: &b },
            F32Tensor { name: "empty", shape: &[0, 4], data: &[] },
        ];
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string()), ("k".to_string(), "v=1".to_string())]);
        write_f32(&path, &tensors, &meta).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for t in &tensors {
            let v = st.tensor(t.name).unwrap();
            assert_eq!((v.dtype(), v.shape()), (Dtype::F32, t.shape));
            let back: Vec<f32> = v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(
                back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
        let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = m.metadata().clone().unwrap();
        assert_eq!((m["format"].as_str(), m["k"].as_str(), m.len()), ("pt", "v=1", 2));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_shape_that_does_not_fit_its_data_or_a_repeated_name_is_an_error_naming_it() {
        let path = scratch("bad");
        let none = BTreeMap::new();
        let short = [F32Tensor { name: "w", shape: &[2, 2], data: &[1.0, 2.0, 3.0] }];
        let e = write_f32(&path, &short, &none).unwrap_err().to_string();
        assert!(e.contains("`w`"), "{e}");
        assert!(e.contains("[2, 2]"), "{e}");
        let twice =
            [F32Tensor { name: "w", shape: &[1], data: &[1.0] }, F32Tensor { name: "w", shape: &[1], data: &[2.0] }];
        assert!(write_f32(&path, &twice, &none).unwrap_err().to_string().contains("twice"));
        let huge = [F32Tensor { name: "h", shape: &[usize::MAX, 2], data: &[] }];
        assert!(write_f32(&path, &huge, &none).is_err());
        assert!(!path.exists(), "a refused write left a file");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
