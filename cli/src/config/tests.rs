use std::path::PathBuf;

use super::*;

fn o(p: &str, v: &str) -> Vec<(String, String)> {
    vec![(p.to_string(), v.to_string())]
}

/// The field and reason of a config error.
fn config_error(r: Result<TrainConfig>) -> (String, String) {
    match r {
        Err(CliError::Config { field, reason }) => (field, reason),
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wapo-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_error(name: &str, text: &str) -> (String, String) {
    let dir = scratch(name);
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    let e = config_error(TrainConfig::resolve(Some(&path), &[]));
    std::fs::remove_dir_all(&dir).unwrap();
    e
}

#[test]
fn embedded_defaults_validate() {
    let cfg = TrainConfig::default();
    cfg.validate().unwrap();
    assert_eq!(cfg.task.name, TaskName::Recurrence);
    assert_eq!(cfg.objective.name, Objective::Wapo);
    assert_eq!(cfg.run_name(), "recurrence-wapo-seed0");
}

#[test]
fn knobs_of_the_next_issue_have_their_documented_defaults() {
    let cfg = TrainConfig::default();
    assert_eq!(cfg.model.path, None);
    assert_eq!(cfg.rollout.max_new_tokens, None);
    assert_eq!(cfg.rollout.top_p, 1.0);
    assert_eq!(cfg.rollout.top_k, 0);
    assert!(!cfg.rollout.chat);
    let cfg = TrainConfig::resolve(
        None,
        &[("rollout.max_new_tokens".into(), "12".into()), ("rollout.chat".into(), "true".into())],
    )
    .unwrap();
    assert_eq!(cfg.rollout.max_new_tokens, Some(12));
    assert!(cfg.rollout.chat);
    // Truncated sampling parses and trains (the trainer scores under the
    // sampler's truncation).
    let cfg =
        TrainConfig::resolve(None, &[("rollout.top_p".into(), "0.9".into()), ("rollout.top_k".into(), "40".into())])
            .unwrap();
    assert_eq!((cfg.rollout.top_p, cfg.rollout.top_k), (0.9, 40));
}

#[test]
fn every_knob_has_one_flag_and_one_documented_key() {
    let knobs = TrainConfig::knobs();
    let mut flags: Vec<&str> = knobs.iter().map(|k| k.flag).collect();
    flags.sort();
    flags.dedup();
    assert_eq!(flags.len(), knobs.len(), "duplicate flag names");
    let text = TrainConfig::default().to_toml().unwrap();
    for k in &knobs {
        assert!(!k.help().is_empty(), "{} has no doc", k.path);
        assert!(text.contains(&format!("(--{})", k.flag)), "{} missing from the written TOML", k.flag);
    }
    // Every key of the written TOML is a knob, and only unset optional knobs are left out.
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut keys = Vec::new();
    fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let path = section::join(prefix, k);
            match v {
                toml::Value::Table(t) => leaves(t, &path, out),
                _ => out.push(path),
            }
        }
    }
    leaves(&table, "", &mut keys);
    let mut paths: Vec<String> = knobs.iter().map(|k| k.path.clone()).collect();
    paths.retain(|p| p != "model.path" && p != "rollout.max_new_tokens");
    paths.sort();
    keys.sort();
    assert_eq!(keys, paths);
}

#[test]
fn written_toml_round_trips() {
    let dir = scratch("round-trip");
    let path = dir.join("config.toml");
    let overrides: Vec<(String, String)> = [
        ("rl.lr", "0.5"),
        ("objective.name", "raft++"),
        ("objective.aggregation", "global"),
        ("objective.include_bins", "pos,valley"),
        ("compare.seeds", "4,5"),
        ("compare.objectives", "gspo"),
        ("rollout.max_new_tokens", "9"),
        ("model.path", dir.to_str().unwrap()),
        ("task.name", "arith"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for cfg in [TrainConfig::default(), TrainConfig::resolve(None, &overrides).unwrap()] {
        std::fs::write(&path, cfg.to_toml().unwrap()).unwrap();
        assert_eq!(TrainConfig::load(&path).unwrap(), cfg);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn overrides_are_typed() {
    let cfg = TrainConfig::resolve(
        None,
        &[
            ("rl.steps".into(), "7".into()),
            ("rl.lr".into(), "3e-4".into()),
            ("objective.name".into(), "grpo".into()),
            ("rl.measure_entropy".into(), "false".into()),
            ("compare.seeds".into(), "1, 2,3".into()),
            ("compare.objectives".into(), "wapo,dr_grpo".into()),
            ("backend".into(), "wgpu".into()),
            ("objective.aggregation".into(), "seq".into()),
        ],
    )
    .unwrap();
    assert_eq!(cfg.rl.steps, 7);
    assert_eq!(cfg.rl.lr, 3e-4);
    assert_eq!(cfg.objective.name, Objective::Grpo);
    assert!(!cfg.rl.measure_entropy);
    assert_eq!(cfg.compare.seeds, vec![1, 2, 3]);
    assert_eq!(cfg.compare.objectives, vec![Objective::Wapo, Objective::DrGrpo]);
    assert_eq!(cfg.backend, Backend::Wgpu);
    assert_eq!(
        cfg.rl_config(cfg.build_task().unwrap().as_ref()).objective.aggregation,
        Some(wapo_core::Aggregation::Seq)
    );
}

#[test]
fn bad_flags_name_the_field() {
    for (path, value) in [
        ("rl.steps", "many"),
        ("rl.steps", "-3"),
        ("rl.lr", "fast"),
        ("rl.lr", "-1"),
        ("rl.lr", "inf"),
        ("task.name", "chess"),
        ("objective.name", "ppo"),
        ("model.heads", "5"),
        ("backend", "tpu"),
        ("objective.include_bins", "hill"),
        ("objective.aggregation", "token"),
        ("rollout.top_p", "0"),
        ("rollout.top_p", "1.5"),
        ("rollout.top_k", "-1"),
        ("rollout.max_new_tokens", "0"),
        ("model.path", "/nonexistent/wapo-model"),
        ("rl.max_skipped_updates", "0"),
        ("compare.seeds", ""),
        ("task.recurrence.p", "1"),
        ("name", "../x"),
    ] {
        let (field, reason) = config_error(TrainConfig::resolve(None, &o(path, value)));
        assert_eq!(field, path, "{path} = {value}: {reason}");
    }
    let (_, reason) = config_error(TrainConfig::resolve(None, &o("rl.steps", "-3")));
    assert!(reason.contains("`-3`") && reason.contains("integer"), "{reason}");
    let (_, reason) = config_error(TrainConfig::resolve(None, &o("backend", "tpu")));
    assert!(reason.contains("cpu or wgpu"), "{reason}");
}

#[test]
fn bad_file_values_name_the_field() {
    let (field, reason) = file_error("steps", "[rl]\nsteps = -3\n");
    assert_eq!(field, "rl.steps");
    assert!(reason.contains("-3"), "{reason}");
    let (field, reason) = file_error("lr", "[rl]\nlr = \"fast\"\n");
    assert_eq!(field, "rl.lr");
    assert!(reason.contains("a number") && reason.contains("fast"), "{reason}");
    assert_eq!(file_error("typo", "[rl]\nstep = 3\n").0, "rl.step");
    assert_eq!(file_error("table", "rl = 3\n").0, "rl");
    assert_eq!(file_error("leaf", "[rl.steps]\nx = 1\n").0, "rl.steps");
    assert_eq!(file_error("nested", "[task.recurrence]\nnoise = -0.5\n").0, "task.recurrence.noise");
    assert_eq!(file_error("objectives", "[compare]\nobjectives = [\"wapo\", \"ppo\"]\n").0, "compare.objectives");
    assert_eq!(file_error("top-p", "[rollout]\ntop_p = 2\n").0, "rollout.top_p");
}

#[test]
fn config_file_merges_under_flags() {
    let dir = scratch("merge");
    let good = dir.join("good.toml");
    std::fs::write(&good, "seed = 5\nlr_unused_comment = 0\n").unwrap();
    assert_eq!(config_error(TrainConfig::resolve(Some(&good), &[])).0, "lr_unused_comment");
    std::fs::write(&good, "seed = 5\n[rl]\nsteps = 3\nlr = 1\n").unwrap();
    let cfg = TrainConfig::resolve(Some(&good), &o("seed", "6")).unwrap();
    assert_eq!((cfg.seed, cfg.rl.steps, cfg.rl.lr), (6, 3, 1.0));
    assert_eq!(cfg.rl.prompts, TrainConfig::default().rl.prompts);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_config_without_the_newer_keys_still_loads() {
    let dir = scratch("old");
    let path = dir.join("config.toml");
    let mut text = TrainConfig::default().to_toml().unwrap();
    let start = text.find("\n[rollout]").unwrap();
    let end = start + 1 + text[start + 1..].find("\n[").unwrap();
    text.replace_range(start..end, "");
    let text = text.replace("max_skipped_updates = 3\n", "");
    assert!(!text.contains("[rollout]") && !text.contains("max_skipped_updates = "));
    std::fs::write(&path, text).unwrap();
    assert_eq!(TrainConfig::load(&path).unwrap(), TrainConfig::default());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checks_also_run_on_values_set_in_code() {
    let mut cfg = TrainConfig::default();
    cfg.rollout.top_p = 0.0;
    assert_eq!(config_error(cfg.validate().map(|()| cfg.clone())).0, "rollout.top_p");
}

#[test]
fn text_task_sections_default_to_the_tasks_own_defaults() {
    // The config's defaults are written out a second time in the section
    // declarations; they must be the tasks' own, or `--print-config` lies.
    assert_eq!(TrainConfig::default().text_options(), wapo_core::task::text::TextOptions::default());
    let cfg = TrainConfig::resolve(
        None,
        &[
            ("task.arith.digits".into(), "3".into()),
            ("task.arith.style".into(), "words".into()),
            ("task.countdown.max_numbers".into(), "5".into()),
            ("task.gsm.held_out".into(), "50".into()),
        ],
    )
    .unwrap();
    let o = cfg.text_options();
    assert_eq!((o.arith.digits, o.countdown.max_numbers, o.gsm.held_out), (3, 5, 50));
    assert_eq!(TrainConfig::default().gsm8k_config(), wapo_core::task::text::gsm8k::Gsm8kConfig::default());
    assert_eq!(o.arith.style, wapo_core::task::text::arith::ArithStyle::Words);
    match TrainConfig::resolve(None, &[("task.arith.style".into(), "loud".into())]) {
        Err(CliError::Config { field, .. }) => assert_eq!(field, "task.arith.style"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gsm8k_is_a_text_task_evaluated_on_a_modest_share_of_its_test_split() {
    let dir = scratch("gsm8k");
    let model = ("model.path".to_string(), dir.to_str().unwrap().to_string());
    let task = ("task.name".to_string(), "gsm8k".to_string());
    let cfg = TrainConfig::resolve(None, &[model.clone(), task.clone()]).unwrap();
    assert_eq!(cfg.task.name, TaskName::Gsm8k);
    assert!(cfg.task.name.is_text());
    // The pretrained preset evaluates 128 of the 1,319 held-out problems ...
    assert_eq!(cfg.eval.examples, 128);
    assert!(cfg.task.gsm8k.dir.is_empty());
    assert_eq!(cfg.run_name(), "gsm8k-wapo-seed0");
    // ... and one knob takes all of them; the task's knobs read as flags do.
    let all = [
        model.clone(),
        task.clone(),
        ("eval.examples".into(), "1319".into()),
        ("task.gsm8k.format_bonus".into(), "0.1".into()),
        ("task.gsm8k.instruction".into(), "".into()),
        ("task.gsm8k.dir".into(), "elsewhere".into()),
    ];
    let cfg = TrainConfig::resolve(None, &all).unwrap();
    assert_eq!(cfg.eval.examples, 1319);
    assert_eq!((cfg.gsm8k_config().format_bonus, cfg.gsm8k_config().instruction.as_str()), (0.1, ""));
    assert_eq!(cfg.task.gsm8k.dir, "elsewhere");
    let e = config_error(TrainConfig::resolve(None, &[model, task, ("task.gsm8k.format_bonus".into(), "-1".into())]));
    assert_eq!(e.0, "task.gsm8k.format_bonus");
    // Without a model it is refused, naming the flag it needs.
    let (field, reason) = config_error(TrainConfig::resolve(None, &o("task.name", "gsm8k")));
    assert_eq!(field, "task.name");
    assert!(reason.contains("--model"), "{reason}");
    std::fs::remove_dir_all(&dir).unwrap();
}
