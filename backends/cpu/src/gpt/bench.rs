//! The training benchmark of the WAPO authors' toy setting: 64 prompts × 8
//! completions, a 196-token prompt + 7 sampled tokens, V = 10, C = 128,
//! L = 3, H = 4, MLP 256. `wapo bench train --backend cpu` prints it.

use std::time::Instant;

use wapo_core::Result;
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::{ModelConfig, OptimConfig, RlConfig, SftConfig, TrainState, metric, rl_step, sft_step, wall_clock};
use wapo_core::task::{Example, Split, Task};

use super::Gpt;
use wapo_core::host::HostTensor;

/// A task of the toy's shape: random digit prompts; the reward is 1 when the
/// first completion token repeats the last prompt digit, so that groups have
/// winners and the objective does its full work.
pub struct ShapeTask {
    pub prompt_len: usize,
    pub completion_len: usize,
    pub vocab: usize,
}

impl Task for ShapeTask {
    fn name(&self) -> &str {
        "bench"
    }
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn prompt_len(&self) -> usize {
        self.prompt_len
    }
    fn completion_len(&self) -> usize {
        self.completion_len
    }
    fn example(&self, split: Split, index: u64) -> Example {
        let salt = if split == Split::Train { 0 } else { 1 << 62 };
        let mut x = (index ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut digit = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % self.vocab as u64) as u32
        };
        let prompt: Vec<u32> = (0..self.prompt_len).map(|_| digit()).collect();
        let last = prompt[self.prompt_len - 1];
        Example { prompt, gold: vec![last; self.completion_len] }
    }
    fn reward(&self, example: &Example, completion: &[u32]) -> f64 {
        f64::from(completion.first() == example.gold.first())
    }
    fn render(&self, tokens: &[u32]) -> String {
        tokens.iter().map(|t| char::from(b'0' + (*t % 10) as u8)).collect()
    }
}

/// Medians over the timed repetitions, in seconds.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub rl_step_s: f64,
    pub generate_s: f64,
    pub train_s: f64,
    pub entropy_s: f64,
    pub sft_step_s: f64,
    /// CPU seconds (all threads) of one RL step and one SFT step: on a
    /// machine shared with other work, wall time overstates the cost.
    pub rl_step_cpu_s: f64,
    pub sft_step_cpu_s: f64,
    pub reps: usize,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "toy setting: 64 prompts × 8 completions, 196 + 7 tokens, V=10 C=128 L=3 H=4 MLP 256")?;
        writeln!(f, "RL step (generation + loss + backward + AdamW + entropy forward): {:.3} s", self.rl_step_s)?;
        writeln!(
            f,
            "  generate {:.3} s, train {:.3} s, entropy forward {:.3} s",
            self.generate_s, self.train_s, self.entropy_s
        )?;
        writeln!(f, "SFT step (64 × 203 tokens): {:.3} s   (median of {} runs)", self.sft_step_s, self.reps)?;
        write!(f, "CPU time (all threads): RL step {:.3} s, SFT step {:.3} s", self.rl_step_cpu_s, self.sft_step_cpu_s)
    }
}

/// CPU seconds this process has used (user + system), from /proc; 0 where
/// that is not available.
pub fn process_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit(')').next() else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Everything one toy-setting training step needs, ready to run.
pub struct ToySetup {
    pub task: ShapeTask,
    pub policy: Gpt<HostTensor<f32>>,
    pub state: TrainState,
    pub rl: RlConfig,
    pub sft: SftConfig,
}

/// The WAPO authors' toy setting: 64 prompts × 8 completions, 196 + 7
/// tokens, V = 10, C = 128, L = 3, H = 4, MLP 256, the wapo objective.
pub fn toy_setup(measure_entropy: bool) -> Result<ToySetup> {
    let task = ShapeTask { prompt_len: 196, completion_len: 7, vocab: 10 };
    let policy = Gpt::<HostTensor<f32>>::new(ModelConfig::toy(10, 203), 0)?;
    let optim = OptimConfig { lr: 1e-4, ..OptimConfig::default() };
    let rl = RlConfig {
        prompts: 64,
        group: 8,
        epochs: 1,
        minibatches: 1,
        objective: ObjectiveConfig::new(Objective::Wapo, 7),
        optim,
        measure_entropy,
    };
    let sft =
        SftConfig { batch: 64, max_steps: u64::MAX, target_accuracy: 1.0, eval_every: 0, eval_examples: 0, optim };
    Ok(ToySetup { task, policy, state: TrainState::new(0), rl, sft })
}

/// Runs one warm-up and `reps` timed RL and SFT steps.
pub fn bench_train(reps: usize) -> Result<BenchReport> {
    let ToySetup { task, mut policy, mut state, rl, sft } = toy_setup(true)?;
    let reps = reps.max(1);
    let (mut step, mut gen_s, mut train, mut ent, mut sft_s) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut rl_cpu, mut sft_cpu) = (vec![], vec![]);
    for i in 0..=reps {
        let c0 = process_cpu_s();
        let m = rl_step(&mut policy, &task, &rl, &mut state, Some(wall_clock))?;
        let c1 = process_cpu_s();
        let t0 = Instant::now();
        sft_step(&mut policy, &task, &sft, &mut state)?;
        let s = t0.elapsed().as_secs_f64();
        let c2 = process_cpu_s();
        rl_cpu.push(c1 - c0);
        sft_cpu.push(c2 - c1);
        if i == 0 {
            continue; // warm-up: first-touch page faults, thread pools
        }
        let get = |k| metric(&m, k).unwrap_or(f64::NAN);
        step.push(get("time/step_s"));
        gen_s.push(get("time/generate_s"));
        train.push(get("time/train_s"));
        ent.push(get("time/entropy_s"));
        sft_s.push(s);
    }
    Ok(BenchReport {
        rl_step_s: median(step),
        generate_s: median(gen_s),
        train_s: median(train),
        entropy_s: median(ent),
        sft_step_s: median(sft_s),
        rl_step_cpu_s: median(rl_cpu[1..].to_vec()),
        sft_step_cpu_s: median(sft_cpu[1..].to_vec()),
        reps,
    })
}

#[cfg(test)]
mod tests {
    /// `cargo test -p wapo-cpu --release -- --ignored --nocapture bench_toy`
    #[test]
    #[ignore = "a benchmark: run in release"]
    fn bench_toy() {
        let r = super::bench_train(3).unwrap();
        println!("{r}");
        assert!(r.rl_step_s > 0.0 && r.sft_step_s > 0.0);
    }
}

#[cfg(test)]
mod kernel_timing {
    use std::time::Instant;

    use super::super::attention::{Heads, Rows};
    use super::super::attention_train::{attention_backward, attention_forward};
    use super::super::kernels::*;

    #[test]
    #[ignore = "a benchmark: run in release"]
    fn kernel_times() {
        let rows = Rows { b: 64, g: 8, p: 196, s: 6 };
        let (r, c) = (rows.total(), 128);
        let x: Vec<f32> = (0..r * 3 * c).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..3 * c * c).map(|i| ((i * 31) % 100) as f32 / 1000.0).collect();
        let b = vec![0.0f32; 3 * c];
        let mut out = vec![0.0f32; r * 3 * c];
        let t = Instant::now();
        matmul_forward(&mut out, &x[..r * c], &w, &b, c, 3 * c);
        let s = t.elapsed().as_secs_f64();
        println!("qkv matmul {r}x{c}x{}: {:.3} s, {:.1} GFLOP/s", 3 * c, s, 2.0 * (r * c * 3 * c) as f64 / s / 1e9);
        let hd = Heads { c, h: 4 };
        let mut att = vec![0.0f32; r * c];
        let mut probs = vec![0.0f32; r * 4 * rows.keys()];
        let t = Instant::now();
        attention_forward(&mut att, &mut probs, &x, rows, hd);
        println!("attention forward: {:.3} s", t.elapsed().as_secs_f64());
        let mut dqkv = vec![0.0f32; r * 3 * c];
        let t = Instant::now();
        attention_backward(&mut dqkv, &att, &probs, &x, rows, hd);
        println!("attention backward: {:.3} s", t.elapsed().as_secs_f64());
        let (mut m, mut rs) = (vec![0.0f32; r], vec![0.0f32; r]);
        let ones = vec![1.0f32; c];
        let t = Instant::now();
        layernorm_forward(&mut out[..r * c], &mut m, &mut rs, &x[..r * c], &ones, &b[..c]);
        println!("layernorm forward: {:.3} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        gelu_forward(&mut out[..r * 2 * c], &x[..r * 2 * c]);
        println!("gelu forward (R×256): {:.3} s", t.elapsed().as_secs_f64());
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
