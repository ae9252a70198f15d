//! Byte-level mutation of a valid input: bit flips, byte overwrites,
//! truncation anywhere and at the format's structural boundaries, extreme
//! little-endian integers written over a length, count or dimension,
//! inserted and removed runs, and a run copied elsewhere (a duplicated
//! entry).

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;

/// A valid input and the offsets where its fields start (lengths, counts,
/// dims, offsets), where overwrites and truncations are most telling.
#[derive(Clone, Debug)]
pub struct Seed {
    pub bytes: Vec<u8>,
    pub boundaries: Vec<usize>,
}

/// Counts and sizes a header may claim: zero, small, just past a power of
/// two, the 2^40 and 10^12 of an impossible tensor, and the type limits.
pub const EXTREMES: [u64; 16] = [
    0,
    1,
    2,
    3,
    255,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 32,
    1 << 40,
    1_000_000_000_000,
    1 << 62,
    i64::MAX as u64,
    (i64::MAX as u64) + 1,
    u64::MAX - 7,
    u64::MAX - 1,
    u64::MAX,
];

#[derive(Clone, Debug)]
pub enum Edit {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    TruncateAtBoundary(Index, u8),
    /// Little-endian `value` of `width` bytes at a boundary.
    Put(Index, u8, u64),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Copy(Index, Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![3 => proptest::sample::select(EXTREMES.to_vec()), 1 => any::<u64>()];
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Edit::Set(i, v)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => (any::<Index>(), 0u8..3).prop_map(|(i, d)| Edit::TruncateAtBoundary(i, d)),
        4 => (any::<Index>(), proptest::sample::select(vec![1u8, 2, 4, 8]), value).prop_map(|(i, w, v)| Edit::Put(i, w, v)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..128).prop_map(|(a, b, n)| Edit::Copy(a, b, n)),
    ]
}

fn at(i: &Index, len: usize) -> usize {
    if len == 0 { 0 } else { i.index(len) }
}

fn boundary(i: &Index, seed: &Seed, len: usize) -> usize {
    if seed.boundaries.is_empty() { at(i, len) } else { seed.boundaries[i.index(seed.boundaries.len())].min(len) }
}

/// Byte edits to apply to a text made on the fly (see [`apply_edits`]).
pub fn mutated_text_edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..3)
}

pub fn apply_edits(seed: &Seed, edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.bytes.clone();
    for e in edits {
        let len = b.len();
        match e {
            Edit::Flip(i, bit) if len > 0 => b[at(i, len)] ^= 1 << bit,
            Edit::Set(i, v) if len > 0 => b[at(i, len)] = *v,
            Edit::Truncate(i) => b.truncate(at(i, len)),
            Edit::TruncateAtBoundary(i, d) => b.truncate((boundary(i, seed, len) + *d as usize).min(len)),
            Edit::Put(i, width, v) => {
                let start = boundary(i, seed, len);
                let bytes = v.to_le_bytes();
                for (k, &x) in bytes[..*width as usize].iter().enumerate() {
                    if let Some(slot) = b.get_mut(start + k) {
                        *slot = x;
                    }
                }
            }
            Edit::Insert(i, bytes) => {
                let p = at(i, len + 1);
                b.splice(p..p, bytes.iter().copied());
            }
            Edit::Remove(i, n) if len > 0 => {
                let p = at(i, len);
                b.drain(p..(p + n).min(len));
            }
            Edit::Copy(from, to, n) if len > 0 => {
                let f = at(from, len);
                let run: Vec<u8> = b[f..(f + n).min(len)].to_vec();
                let t = at(to, len + 1);
                b.splice(t..t, run);
            }
            _ => {}
        }
    }
    b
}

/// Inputs made from one of `seeds` by one to three edits.
pub fn mutated(seeds: Vec<Seed>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = Arc::new(seeds);
    (any::<Index>(), prop::collection::vec(edit(), 1..4)).prop_map(move |(s, edits)| {
        let seed = &seeds[s.index(seeds.len())];
        apply_edits(seed, &edits)
    })
}

/// The offsets just before every occurrence of `needle` in `bytes`.
pub fn offsets_of(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    bytes.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}
