//! End to end through the built `wapo` binary with a tiny config (seconds):
//! outputs and finite metrics, bit-exact resume (after a clean stop, a torn
//! write and a real kill), atomic checkpoints, and clear errors.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, ok, records, steps_of, without_timings};
use serde_json::Value;

#[test]
fn train_writes_config_metrics_checkpoints_and_plots() {
    let s = Scratch::new("outputs");
    let out = ok(s.train("a", &[]));
    let run = s.run("a");
    for f in [
        "config.toml",
        "metrics.jsonl",
        "checkpoints/sft.safetensors",
        "checkpoints/step-000002.safetensors",
        "checkpoints/step-000004.safetensors",
        "plots/reward.png",
        "plots/reward.svg",
        "plots/entropy.png",
        "plots/clipped_fraction.svg",
        "plots/bins.png",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let png = std::fs::read(run.join("plots/reward.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let rs = records(&run);
    assert_eq!(steps_of(&rs, "sft"), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(steps_of(&rs, "rl"), vec![1, 2, 3, 4]);
    assert_eq!(steps_of(&rs, "eval"), vec![0, 2, 4]);
    for r in &rs {
        for (k, v) in r {
            if k != "phase" {
                let x = v.as_f64().unwrap_or_else(|| panic!("{k} = {v} is not a number"));
                assert!(x.is_finite(), "{k} = {x}");
            }
        }
    }
    let rl = rs.iter().find(|r| r["phase"] == "rl").unwrap();
    for key in ["rollout/reward_mean", "objective/clipped_fraction", "entropy/mean", "bins/pos_peak_count"] {
        assert!(rl.contains_key(key), "rl record lacks {key}");
    }
    let eval = rs.iter().find(|r| r["phase"] == "eval").unwrap();
    assert!(eval.contains_key("eval/greedy_exact") && eval.contains_key("eval/pass@k"));

    // `wapo eval --samples 6`: pass@k for k = 1, 2, 4, 6 (rising with k; at
    // k = n it is "any sample solves"; at k = 1 the share that solve),
    // mean@6 and maj@6.
    let ckpt = run.join("checkpoints/step-000004.safetensors");
    let ev =
        Command::new(env!("CARGO_BIN_EXE_wapo")).arg("eval").arg(&ckpt).args(["--json", "--samples", "6"]).output();
    let ev = ev.unwrap();
    assert!(ev.status.success(), "{}", String::from_utf8_lossy(&ev.stderr));
    let e: Value = serde_json::from_slice(&ev.stdout).unwrap();
    let get = |k: &str| e[k].as_f64().unwrap_or_else(|| panic!("eval --samples 6 lacks {k}: {e}"));
    let pass: Vec<f64> = [1, 2, 4, 6].iter().map(|k| get(&format!("eval/pass@{k}"))).collect();
    assert!(pass.windows(2).all(|w| w[0] <= w[1] + 1e-12) && pass.iter().all(|p| (0.0..=1.0).contains(p)), "{pass:?}");
    assert_eq!(pass[3], get("eval/pass@k"));
    assert!((pass[0] - get("eval/mean@6")).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&get("eval/maj@6")));

    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("name = \"sort\"") && saved.contains("steps = 4"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("after SFT") && stdout.contains("after RL (wapo)"), "{stdout}");
}

#[test]
fn resume_after_a_lost_checkpoint_and_a_torn_line_repeats_the_straight_run() {
    let s = Scratch::new("resume");
    ok(s.train("straight", &[]));

    // Three steps with checkpoints at 2 and 3, then the step-3 checkpoint
    // lost and a half-written line appended: what a kill right after step 3
    // could leave.
    ok(s.train("split", &["--rl-steps", "3"]));
    let run = s.run("split");
    std::fs::remove_file(run.join("checkpoints/step-000003.safetensors")).unwrap();
    let mut text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.push_str("{\"phase\":\"rl\",\"st");
    std::fs::write(run.join("metrics.jsonl"), text).unwrap();

    ok(s.train("split", &["--resume", "--rl-steps", "4"]));
    let a = without_timings(records(&s.run("straight")));
    let b = without_timings(records(&run));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}

#[test]
fn resume_after_a_kill_repeats_the_straight_run() {
    let s = Scratch::new("kill");
    let long = ["--rl-steps", "200", "--checkpoint-every", "1", "--eval-every", "5"];
    ok(s.train("straight", &long));

    let mut child = s.train("killed", &long).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let first = s.run("killed").join("checkpoints/step-000001.safetensors");
    let t0 = Instant::now();
    while !first.exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.exists(), "the run never wrote its first checkpoint");
    let last = s.run("killed").join("checkpoints/step-000200.safetensors");
    assert!(!last.exists(), "the run finished before the kill: nothing was tested");

    ok(s.train("killed", &["--resume"]));
    assert_eq!(without_timings(records(&s.run("straight"))), without_timings(records(&s.run("killed"))));
}

#[test]
fn a_torn_temp_file_never_replaces_the_good_checkpoint() {
    let s = Scratch::new("atomic");
    ok(s.train("a", &[]));
    let ckpts = s.run("a").join("checkpoints");
    let good = ckpts.join("step-000004.safetensors");
    let before = std::fs::read(&good).unwrap();
    // What a kill during the next save of this name leaves: the temp file,
    // half written, never renamed.
    let torn = ckpts.join(".step-000004.safetensors.tmp-4242");
    std::fs::write(&torn, &before[..before.len() / 2]).unwrap();
    let torn_next = ckpts.join(".step-000006.safetensors.tmp-4242");
    std::fs::write(&torn_next, b"garbage").unwrap();

    // Evaluating the checkpoint reproduces the run's last held-out greedy score.
    let out = ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_wapo"));
        c.arg("eval").arg(&good).arg("--json");
        c
    });
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let last_eval = records(&s.run("a")).into_iter().rfind(|r| r["phase"] == "eval").unwrap();
    assert_eq!(m["eval/greedy_exact"], last_eval["eval/greedy_exact"]);
    assert_eq!(std::fs::read(&good).unwrap(), before);

    // Resuming ignores the temp files and continues from step 4.
    ok(s.train("a", &["--resume", "--rl-steps", "6"]));
    assert!(ckpts.join("step-000006.safetensors").is_file());
    assert_eq!(std::fs::read(&torn_next).unwrap(), b"garbage");
    assert_eq!(steps_of(&records(&s.run("a")), "rl"), vec![1, 2, 3, 4, 5, 6]);

    // The writer itself: a new version replaces the old one whole.
    let target = s.0.join("file.bin");
    std::fs::write(&target, b"old").unwrap();
    wapo_io::atomic::write_bytes(&target, b"new contents").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new contents");
    let leftovers: Vec<_> = std::fs::read_dir(&s.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn bad_flags_and_configs_fail_with_the_field_named() {
    let s = Scratch::new("errors");
    for (args, needle) in [
        (vec!["--rl-steps", "many"], "rl.steps"),
        (vec!["--objective", "ppo"], "objective.name"),
        (vec!["--heads", "3"], "model.heads"),
        (vec!["--backend", "tpu"], "backend"),
    ] {
        let out = s.train("e", &args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    std::fs::write(s.0.join("typo.toml"), "[rl]\nstepz = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wapo"))
        .args(["train", "--config"])
        .arg(s.0.join("typo.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rl.stepz"));
    let out = s.train("never-ran", &["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run to resume"));
}

#[test]
fn compare_overlays_objectives_from_one_sft_checkpoint() {
    compare_on("cpu");
}

/// `compare` on the GPU policy gives the same files and the same invariants.
#[test]
fn compare_runs_on_wgpu() {
    if wapo_wgpu::test_context().is_some() {
        compare_on("wgpu");
    }
}

fn compare_on(backend: &str) {
    let s = Scratch::new(&format!("compare-{backend}"));
    let out = ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_wapo"));
        c.args(["compare", "--config"]).arg(s.0.join("tiny.toml")).arg("--out-dir").arg(s.0.join("runs")).args([
            "--name",
            "cmp",
            "--objectives",
            "wapo,grpo",
            "--seeds",
            "1,2",
            "--backend",
            backend,
        ]);
        c
    });
    let root = s.0.join("runs/cmp");
    for f in [
        "sft/checkpoints/sft.safetensors",
        "wapo-seed1/metrics.jsonl",
        "grpo-seed2/metrics.jsonl",
        "plots/heldout_greedy.png",
        "plots/entropy.svg",
        "summary.txt",
    ] {
        assert!(root.join(f).is_file(), "missing {f}");
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().filter(|l| l.starts_with("wapo ") || l.starts_with("grpo ")).count(), 4, "{table}");
    assert!(table.contains("collapse"));
    // Every run starts from the same SFT weights: equal held-out greedy at step 0.
    let start = |name: &str| {
        records(&root.join(name))
            .into_iter()
            .find(|r| r["phase"] == "eval" && r["step"] == 0)
            .unwrap()["eval/greedy_exact"]
            .clone()
    };
    assert_eq!(start("wapo-seed1"), start("grpo-seed2"));
    // No SFT records in the RL runs: they did not train from scratch.
    assert!(steps_of(&records(&root.join("wapo-seed1")), "sft").is_empty());
}

/// The same tiny run on the GPU policy (lavapipe in CI): outputs, finite
/// metrics, a bit-exact resume, and its checkpoint evaluated on the CPU.
#[test]
fn train_on_wgpu_writes_outputs_resumes_bit_exactly_and_its_checkpoint_runs_on_cpu() {
    if wapo_wgpu::test_context().is_none() {
        return;
    }
    let s = Scratch::new("wgpu");
    let out = ok(s.train("straight", &["--backend", "wgpu"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("on backend wgpu") && stdout.contains("after RL (wapo)"), "{stdout}");
    let straight = records(&s.run("straight"));
    assert_eq!(steps_of(&straight, "sft"), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(steps_of(&straight, "rl"), vec![1, 2, 3, 4]);
    for r in &straight {
        for (k, v) in r {
            if k != "phase" {
                assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
            }
        }
    }
    assert!(s.run("straight").join("plots/reward.png").is_file());

    ok(s.train("split", &["--backend", "wgpu", "--rl-steps", "2"]));
    ok(s.train("split", &["--backend", "wgpu", "--resume", "--rl-steps", "4"]));
    assert_eq!(without_timings(records(&s.run("split"))), without_timings(straight));

    let ckpt = s.run("straight").join("checkpoints/step-000004.safetensors");
    for backend in ["wgpu", "cpu"] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wapo"));
        c.arg("eval").arg(&ckpt).args(["--json", "--backend", backend]);
        let out = ok(c);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let exact = v["eval/greedy_exact"].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&exact), "{backend}: {v}");
    }
}
