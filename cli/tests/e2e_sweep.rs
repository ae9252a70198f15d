//! `wapo sweep` end to end on the tiny config: the records, the map and the
//! table; a forced collapse; `--resume` after a lost record and after a kill.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{Scratch, ok, records};
use serde_json::Value;

fn sweep(s: &Scratch, name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wapo"));
    cmd.arg("sweep")
        .arg("--config")
        .arg(s.0.join("tiny.toml"))
        .arg("--out-dir")
        .arg(s.0.join("runs"))
        .args(["--name", name])
        .args(extra);
    cmd
}

fn sweep_records(root: &Path) -> Vec<serde_json::Map<String, Value>> {
    std::fs::read_to_string(root.join("sweep.jsonl"))
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

const GRID: [&str; 6] = ["--objectives", "wapo,grpo", "--lr", "0.001,0.01", "--seeds", "0,1"];

#[test]
fn sweep_writes_one_record_per_run_the_map_and_the_table() {
    let s = Scratch::new("sweep");
    let out = ok(sweep(&s, "map", &GRID));
    let root = s.0.join("runs/map");
    let rs = sweep_records(&root);
    let names: Vec<&str> = rs.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "wapo-lr0.001-seed0",
            "wapo-lr0.001-seed1",
            "wapo-lr0.01-seed0",
            "wapo-lr0.01-seed1",
            "grpo-lr0.001-seed0",
            "grpo-lr0.001-seed1",
            "grpo-lr0.01-seed0",
            "grpo-lr0.01-seed1"
        ]
    );
    for r in &rs {
        let run = records(&root.join(r["run"].as_str().unwrap()));
        // The run trained with its cell's knobs, from the shared SFT (no SFT records).
        let saved = std::fs::read_to_string(root.join(r["run"].as_str().unwrap()).join("config.toml")).unwrap();
        assert!(saved.contains(&format!("lr = {}", r["lr"])), "{saved}");
        assert!(run.iter().all(|x| x["phase"] != "sft"));
        // Rewards and entropies as the run's metrics have them.
        let evals: Vec<&Value> = run.iter().filter(|x| x["phase"] == "eval").map(|x| &x["eval/greedy_exact"]).collect();
        assert_eq!(&r["start_reward"], evals[0]);
        assert_eq!(&r["final_reward"], *evals.last().unwrap());
        let best = evals.iter().filter_map(|v| v.as_f64()).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(r["best_reward"].as_f64(), Some(best));
        let last_rl = run.iter().rfind(|x| x["phase"] == "rl").unwrap();
        assert_eq!(r["final_entropy"], last_rl["entropy/mean"]);
        assert_eq!(r["rl_steps"], 4);
        let collapsed = r["collapsed"].as_bool().unwrap();
        assert_eq!(collapsed, r["collapse_step"].is_u64(), "{r:?}");
        assert_eq!(collapsed, r["collapse_rule"].is_string(), "{r:?}");
        for key in ["objective", "clip_eps", "epochs", "temperature", "seed"] {
            assert!(r.contains_key(key), "record lacks {key}");
        }
    }
    // Same SFT weights everywhere: the held-out score before RL is shared.
    assert!(rs.iter().all(|r| r["start_reward"] == rs[0]["start_reward"]));

    let png = std::fs::read(root.join("stability.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(root.join("stability.svg")).unwrap();
    for needle in ["wapo: runs collapsed", "grpo: held-out final / best", "0.01", "learning rate"] {
        assert!(svg.contains(needle), "svg lacks {needle}");
    }
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("wapo ") || l.starts_with("grpo ")).collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(table.contains("collapsed") && table.contains("8 runs"), "{table}");
    assert_eq!(std::fs::read_to_string(root.join("summary.txt")).unwrap(), table);
}

/// A band of width zero around the first step's entropy: every run leaves
/// it at step 2 (its entropy is not bit-equal to step 1's), and the map
/// counts every seed.
#[test]
fn a_zero_width_band_collapses_every_run_at_step_two() {
    let s = Scratch::new("sweep-band");
    let out = ok(sweep(
        &s,
        "band",
        &["--objectives", "wapo", "--seeds", "0,1", "--entropy-low-ratio", "1", "--entropy-high-ratio", "1"],
    ));
    let rs = sweep_records(&s.0.join("runs/band"));
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r["collapsed"], true);
        assert_eq!(r["collapse_step"], 2);
        let rule = r["collapse_rule"].as_str().unwrap();
        assert!(rule == "entropy_low" || rule == "entropy_high", "{rule}");
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with("wapo ") && l.contains("2/2")), "{table}");
}

#[test]
fn resume_reruns_only_the_run_whose_record_is_missing() {
    let s = Scratch::new("sweep-lost");
    let grid = ["--objectives", "wapo,grpo", "--lr", "0.001,0.01", "--seeds", "0"];
    ok(sweep(&s, "a", &grid));
    let root = s.0.join("runs/a");
    let file = root.join("sweep.jsonl");
    let before = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = before.lines().collect();
    let lost = sweep_records(&root)[1]["run"].as_str().unwrap().to_string();
    let without: String = lines.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&file, without).unwrap();
    let configs: Vec<(String, PathBuf, SystemTime)> = sweep_records(&root)
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_string())
        .chain([lost.clone()])
        .map(|n| {
            let p = root.join(&n).join("config.toml");
            let t = mtime(&p);
            (n, p, t)
        })
        .collect();
    let sft = mtime(&root.join("sft/checkpoints/sft.safetensors"));
    std::thread::sleep(Duration::from_millis(20));

    ok(sweep(&s, "a", &[&grid[..], &["--resume"]].concat()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    for (name, path, t) in configs {
        assert_eq!(mtime(&path) != t, name == lost, "{name}: rerun iff its record was lost");
    }
    assert_eq!(mtime(&root.join("sft/checkpoints/sft.safetensors")), sft, "the SFT checkpoint was redone");

    // Another config is another sweep: a resume with a different step count
    // keeps no record as finished.
    let out = ok(sweep(&s, "a", &[&grid[..], &["--resume", "--rl-steps", "5"]].concat()));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kept"));
    assert!(sweep_records(&root).iter().all(|r| r["rl_steps"] == 5));
}

/// A kill after a run wrote its config but before its first checkpoint
/// leaves a run directory with nothing to resume from: the resume must start
/// it from the sweep's SFT checkpoint, not train a new SFT of its own.
#[test]
fn a_run_killed_before_its_first_checkpoint_restarts_from_the_shared_sft() {
    let s = Scratch::new("sweep-early-kill");
    let grid = ["--objectives", "wapo", "--lr", "0.001", "--seeds", "0,1"];
    ok(sweep(&s, "a", &grid));
    let root = s.0.join("runs/a");
    let file = root.join("sweep.jsonl");
    let straight = std::fs::read_to_string(&file).unwrap();
    let first = straight.lines().next().unwrap();
    let killed = sweep_records(&root)[1]["run"].as_str().unwrap().to_string();
    std::fs::write(&file, format!("{first}\n")).unwrap();
    std::fs::remove_dir_all(root.join(&killed).join("checkpoints")).unwrap();
    std::fs::write(root.join(&killed).join("metrics.jsonl"), "").unwrap();

    let out = ok(sweep(&s, "a", &[&grid[..], &["--resume"]].concat()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept 1 finished runs of 2"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), straight);
    let phases: Vec<String> =
        records(&root.join(&killed)).iter().map(|r| r["phase"].as_str().unwrap().to_string()).collect();
    assert!(!phases.iter().any(|p| p == "sft"), "the resumed run trained its own SFT: {phases:?}");
}

#[test]
fn resume_after_a_kill_gives_the_records_of_the_straight_sweep() {
    let s = Scratch::new("sweep-kill");
    let grid = ["--objectives", "wapo,grpo", "--lr", "0.001", "--seeds", "0,1", "--rl-steps", "40"];
    ok(sweep(&s, "straight", &grid));

    let mut child = sweep(&s, "killed", &grid).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let file = s.0.join("runs/killed/sweep.jsonl");
    let t0 = Instant::now();
    let finished = || std::fs::read_to_string(&file).map_or(0, |t| t.lines().count());
    while finished() < 1 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = finished();
    assert!(kept >= 1, "the sweep never finished a run");
    assert!(kept < 4, "the sweep finished before the kill: nothing was tested");

    let out = ok(sweep(&s, "killed", &[&grid[..], &["--resume"]].concat()));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("kept {kept} finished runs of 4")));
    let straight = std::fs::read_to_string(s.0.join("runs/straight/sweep.jsonl")).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), straight);
}

#[test]
fn sweep_runs_on_wgpu() {
    if wapo_wgpu::test_context().is_none() {
        return;
    }
    let s = Scratch::new("sweep-wgpu");
    ok(sweep(&s, "gpu", &["--objectives", "wapo", "--lr", "0.001,0.01", "--seeds", "0", "--backend", "wgpu"]));
    let rs = sweep_records(&s.0.join("runs/gpu"));
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r["final_reward"].as_f64().is_some_and(|x| (0.0..=1.0).contains(&x))));
    assert!(s.0.join("runs/gpu/stability.png").is_file());
}

#[test]
fn bad_grids_fail_with_the_field_named() {
    let s = Scratch::new("sweep-errors");
    for (args, needle) in [
        (vec!["--lr", "0.001,0.001"], "sweep.lr"),
        (vec!["--epochs", "1,x"], "sweep.epochs"),
        (vec!["--lr", "0.001,-1"], "rl.lr"),
        (vec!["--entropy-low-ratio", "2"], "compare.entropy_low_ratio"),
    ] {
        let out = sweep(&s, "e", &args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
