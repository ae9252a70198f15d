//! safetensors checkpoints round-trip parameters, optimizer state and the
//! training state, and a resumed step repeats the uninterrupted one bit for
//! bit.

use wapo_benches::ShapeTask;
use wapo_core::objective::{Objective, ObjectiveConfig};
use wapo_core::rl::{ModelConfig, OptimConfig, Policy, Prompts, RlConfig, TrainState, rl_step};
use wapo_io::checkpoint;

use super::{Policies, flat_parameters};

fn cfg() -> ModelConfig {
    ModelConfig::gpt(6, 10, 8, 2, 2, 16)
}

fn train_once<P: Policy>(m: &mut P) {
    let prompts = [1u32, 2, 3, 4, 5, 0];
    let gold = [2u32, 3, 4, 5];
    m.zero_grad();
    m.sft(Prompts { tokens: &prompts, batch: 2, len: 3, pad: &[] }, &gold, &[2, 2]).unwrap();
    m.optimizer_step(&OptimConfig { lr: 1e-2, weight_decay: 0.1, ..OptimConfig::default() }).unwrap();
}

/// A directory of its own per test and backend instance.
fn scratch(what: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("wapo-{what}-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn round_trip_body<M: Policies>(m: &M) {
    let dir = scratch("policy-ckpt");
    let path = dir.join("last.safetensors");

    let mut a = m.make(cfg(), 1).unwrap();
    train_once(&mut a);
    let mut state = TrainState::new(42);
    state.rl_steps = 5;
    let _ = state.uniforms(3);
    checkpoint::save(&path, &a, &state).unwrap();
    // No temp file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let mut b = m.make(cfg(), 2).unwrap();
    assert_ne!(a.parameters().unwrap(), b.parameters().unwrap());
    let restored = checkpoint::load(&path, &mut b).unwrap();
    assert_eq!(restored, state);
    assert_eq!(a.parameters().unwrap(), b.parameters().unwrap());
    assert_eq!(a.optimizer_state().unwrap(), b.optimizer_state().unwrap());
    assert_eq!(b.optimizer_state().unwrap().step, 1);
    let names: Vec<String> = b.parameters().unwrap().into_iter().map(|t| t.name).collect();
    for want in [
        "wte",
        "wpe",
        "h.0.ln_1.weight",
        "h.1.attn.c_attn.weight",
        "h.1.mlp.c_proj.bias",
        "ln_f.bias",
        "lm_head.weight",
    ] {
        assert!(names.iter().any(|n| n == want), "missing {want}");
    }

    train_once(&mut a);
    train_once(&mut b);
    assert_eq!(flat_parameters(&a), flat_parameters(&b), "resumed step differs");

    // A checkpoint of another shape is refused, not loaded.
    let mut other = m.make(ModelConfig { channels: 16, ..cfg() }, 1).unwrap();
    assert!(checkpoint::load(&path, &mut other).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two RL steps in a row equal one step, a checkpoint, a fresh process-like
/// restore (new model, new state), and the second step: same metrics, same
/// weights, bit for bit.
pub fn rl_resume_body<M: Policies>(m: &M) {
    let task = ShapeTask { prompt_len: 5, completion_len: 3, vocab: 6 };
    let rl = RlConfig {
        prompts: 4,
        group: 4,
        epochs: 2,
        minibatches: 2,
        micro_batches: 1,
        objective: ObjectiveConfig::new(Objective::Wapo, 3),
        optim: OptimConfig { lr: 1e-2, ..OptimConfig::default() },
        measure_entropy: true,
        sampling: Default::default(),
    };
    let mut a = m.make(cfg(), 7).unwrap();
    let mut sa = TrainState::new(9);
    rl_step(&mut a, &task, &rl, &mut sa, None).unwrap();
    let dir = scratch("policy-resume");
    let path = dir.join("step1.safetensors");
    checkpoint::save(&path, &a, &sa).unwrap();
    let second = rl_step(&mut a, &task, &rl, &mut sa, None).unwrap();

    let mut b = m.make(cfg(), 123).unwrap();
    let mut sb = checkpoint::load(&path, &mut b).unwrap();
    let resumed = rl_step(&mut b, &task, &rl, &mut sb, None).unwrap();
    assert_eq!(second, resumed);
    assert_eq!(flat_parameters(&a), flat_parameters(&b));
    assert_eq!(sa, sb);
    std::fs::remove_dir_all(&dir).unwrap();
}
