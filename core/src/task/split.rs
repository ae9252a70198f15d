//! Train / held-out partition and per-example randomness shared by the tasks.
//!
//! The split of a prompt is a function of its tokens alone (a hash), so the
//! two splits can never share a prompt however many examples are drawn, and
//! the held-out set is the same set of prompts for every task seed. An
//! example is drawn by rejection: candidates come from an RNG keyed by
//! (seed, split, index) until one hashes into the requested split.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Example, Split};

/// One prompt in `HELDOUT_EVERY` lands in the held-out split.
pub const HELDOUT_EVERY: u64 = 8;

/// Prompt spaces smaller than this could leave a split (almost) empty and
/// make rejection sampling slow, so task configs refuse them.
pub const MIN_PROMPT_SPACE: u64 = 1000;

/// Which split a prompt belongs to.
pub fn split_of(prompt: &[u32]) -> Split {
    // FNV-1a spreads short token strings poorly over the low bits; the
    // splitmix64 finalizer fixes that.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in prompt {
        for b in t.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    if splitmix64(h).is_multiple_of(HELDOUT_EVERY) { Split::Heldout } else { Split::Train }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG of example `index` of `split`: distinct keys give independent
/// streams, with no hashing collisions because the key is the seed itself.
pub fn example_rng(seed: u64, split: Split, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16] = match split {
        Split::Train => 1,
        Split::Heldout => 2,
    };
    ChaCha8Rng::from_seed(key)
}

/// Draws candidates from `generate` until one falls in `split`.
///
/// Terminates with probability 1 because every task's prompt space holds at
/// least [`MIN_PROMPT_SPACE`] prompts, of which about 1/[`HELDOUT_EVERY`]
/// are held out.
pub fn draw(seed: u64, split: Split, index: u64, mut generate: impl FnMut(&mut ChaCha8Rng) -> Example) -> Example {
    let mut rng = example_rng(seed, split, index);
    loop {
        let ex = generate(&mut rng);
        if split_of(&ex.prompt) == split {
            return ex;
        }
    }
}

/// 1.0 for an exact match, else 0.0; with `partial`, the fraction of
/// positions that match. A completion of the wrong length scores 0.
pub fn match_reward(gold: &[u32], completion: &[u32], partial: bool) -> f64 {
    if gold.len() != completion.len() || gold.is_empty() {
        return 0.0;
    }
    let hits = gold.iter().zip(completion).filter(|(g, c)| g == c).count();
    if partial {
        hits as f64 / gold.len() as f64
    } else if hits == gold.len() {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_exact_and_partial() {
        assert_eq!(match_reward(&[1, 2, 3], &[1, 2, 3], false), 1.0);
        assert_eq!(match_reward(&[1, 2, 3], &[1, 2, 4], false), 0.0);
        assert_eq!(match_reward(&[1, 2, 3, 4], &[1, 2, 0, 0], true), 0.5);
        assert_eq!(match_reward(&[1, 2, 3], &[1, 2], false), 0.0);
    }

    #[test]
    fn split_fraction_is_about_one_in_eight() {
        let held = (0..8000u32).filter(|&i| split_of(&[i / 100, i % 100, 7]) == Split::Heldout).count();
        assert!((800..1200).contains(&held), "held-out count {held}");
    }

    #[test]
    fn rng_keys_are_independent() {
        use rand::RngExt;
        let a: u64 = example_rng(1, Split::Train, 0).random();
        let b: u64 = example_rng(1, Split::Heldout, 0).random();
        let c: u64 = example_rng(1, Split::Train, 1).random();
        let d: u64 = example_rng(2, Split::Train, 0).random();
        let all = [a, b, c, d];
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(all[i], all[j]);
            }
        }
    }
}
