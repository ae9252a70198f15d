//! Runs under faults, end to end through the `wapo` binary: corrupted and
//! truncated checkpoints (detected; `--resume` falls back to the newest one
//! that reads back whole), a run directory in use (refused; a stale lock
//! taken over), a diverging learning rate (updates skipped, then a clear
//! stop that keeps the last good checkpoint) and config errors that name
//! the field.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Scratch, ok, records, steps_of, without_timings};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn flip_bit(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() - 100]).unwrap();
}

fn eval(ckpt: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wapo")).arg("eval").arg(ckpt).arg("--json").output().unwrap()
}

#[test]
fn corrupted_checkpoints_are_detected_and_resume_falls_back() {
    let s = Scratch::new("faults-ckpt");
    ok(s.train("straight", &[]));
    ok(s.train("straight6", &["--rl-steps", "6"]));

    // A flipped bit in the last checkpoint's data: eval refuses it, resume
    // passes over it to step 2 and repeats the straight run.
    ok(s.train("flip", &[]));
    let ckpts = s.run("flip").join("checkpoints");
    let last = ckpts.join("step-000004.safetensors");
    let len = std::fs::metadata(&last).unwrap().len() as usize;
    flip_bit(&last, len / 2);
    let out = eval(&last);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("checksum mismatch"), "{}", stderr(&out));
    let out = ok(s.train("flip", &["--resume", "--rl-steps", "6"]));
    let err = stderr(&out);
    assert!(err.contains("step-000004.safetensors") && err.contains("falling back"), "{err}");
    assert!(err.contains("resuming") && err.contains("at RL step 2"), "{err}");
    assert_eq!(without_timings(records(&s.run("straight6"))), without_timings(records(&s.run("flip"))));

    // Both RL checkpoints bad (one truncated, one flipped in its header's
    // metadata): resume goes back to the SFT checkpoint.
    ok(s.train("both", &[]));
    let ckpts = s.run("both").join("checkpoints");
    truncate(&ckpts.join("step-000004.safetensors"));
    let step2 = ckpts.join("step-000002.safetensors");
    let text = std::fs::read(&step2).unwrap();
    let at = text.windows(9).position(|w| w == b"rl_steps=").unwrap() + 9;
    flip_bit(&step2, at);
    let out = eval(&ckpts.join("step-000004.safetensors"));
    assert!(stderr(&out).contains("truncated or corrupted"), "{}", stderr(&out));
    let out = ok(s.train("both", &["--resume"]));
    let err = stderr(&out);
    assert!(err.contains("after SFT"), "{err}");
    assert_eq!(without_timings(records(&s.run("straight"))), without_timings(records(&s.run("both"))));
}

#[test]
fn a_run_directory_in_use_is_refused_and_a_stale_lock_taken_over() {
    let s = Scratch::new("faults-lock");
    ok(s.train("a", &[]));
    let lock = s.run("a").join("run.lock");
    assert!(!lock.exists(), "the lock outlived its run");

    let mut holder = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(&lock, format!("{}\n", holder.id())).unwrap();
    let before = std::fs::read_to_string(s.run("a").join("metrics.jsonl")).unwrap();
    let out = s.train("a", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("another run (process {})", holder.id())), "{err}");
    assert_eq!(std::fs::read_to_string(s.run("a").join("metrics.jsonl")).unwrap(), before);

    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = ok(s.train("a", &["--resume", "--rl-steps", "5"]));
    assert!(stderr(&out).contains("took over the lock"), "{}", stderr(&out));
    assert!(!lock.exists());
}

#[test]
fn a_diverging_learning_rate_skips_updates_then_stops_naming_the_cause() {
    let s = Scratch::new("faults-lr");
    let out = s.train("lr", &["--lr", "1e300", "--checkpoint-every", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in ["rl step 3", "3 updates in a row", "NaN or infinite", "learning rate", "rl.lr = 1e300"] {
        assert!(err.contains(needle), "missing `{needle}`: {err}");
    }
    assert!(!err.contains("sampled token"), "{err}");
    assert!(err.contains("the last good checkpoint is") && err.contains("step-000002"), "{err}");
    let run = s.run("lr");
    let rs = records(&run);
    assert_eq!(steps_of(&rs, "rl"), vec![1, 2, 3]);
    let skipped: Vec<f64> =
        rs.iter().filter(|r| r["phase"] == "rl").map(|r| r["objective/skipped_updates"].as_f64().unwrap()).collect();
    assert_eq!(skipped, vec![1.0, 2.0, 3.0]);
    // Every checkpoint holds finite numbers (the skipped updates were
    // undone) and evaluates like the weights after SFT.
    assert!(!run.join("checkpoints/step-000003.safetensors").exists());
    let greedy = |p: &Path| {
        let out = eval(p);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["eval/greedy_exact"].clone()
    };
    let sft = greedy(&run.join("checkpoints/sft.safetensors"));
    assert_eq!(greedy(&run.join("checkpoints/step-000002.safetensors")), sft);

    // The same in SFT, where no checkpoint exists yet.
    let out = s.train("sft-lr", &["--sft-lr", "1e300"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("sft step 3") && err.contains("sft.lr = 1e300") && err.contains("no checkpoint"), "{err}");
    assert!(!s.run("sft-lr").join("checkpoints/sft.safetensors").exists());

    // A good run counts no skipped update.
    ok(s.train("good", &[]));
    assert!(
        records(&s.run("good")).iter().filter(|r| r["phase"] == "rl").all(|r| r["objective/skipped_updates"] == 0.0)
    );
}

#[test]
fn config_file_errors_name_the_field() {
    let s = Scratch::new("faults-config");
    for (text, field) in [
        ("[rl]\nsteps = -3\n", "`rl.steps`"),
        ("[rl]\nlr = \"fast\"\n", "`rl.lr`"),
        ("[rollout]\ntop_p = 0\n", "`rollout.top_p`"),
        ("[objective]\naggregation = \"token\"\n", "`objective.aggregation`"),
    ] {
        let path = s.0.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_wapo")).args(["train", "--config"]).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(field), "{text}: {}", stderr(&out));
    }
    let out = s.train("e", &["--top-p", "1.5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`rollout.top_p`: must be in (0, 1]"), "{}", stderr(&out));
}

#[test]
fn a_run_whose_updates_were_mostly_skipped_fails_naming_the_count() {
    // Too few skips in a row to stop the run (the limit is 10), but every
    // one of its 5 updates was undone: it ends with exit 2, not a result.
    let s = Scratch::new("faults-mostly");
    let out = s.train("m", &["--lr", "1e300", "--rl-steps", "5", "--max-skipped-updates", "10"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in ["5 of 5 updates were skipped", "NaN or infinite", "rl.lr = 1e300"] {
        assert!(err.contains(needle), "missing `{needle}`: {err}");
    }
    let rs = records(&s.run("m"));
    let flags: Vec<f64> =
        rs.iter().filter(|r| r["phase"] == "rl").map(|r| r["objective/update_skipped"].as_f64().unwrap()).collect();
    assert_eq!(flags, vec![1.0; 5]);
    // The plots were still written.
    assert!(s.run("m").join("plots").read_dir().unwrap().next().is_some());
}
