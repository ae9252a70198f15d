//! `wapo loss` as a user runs it: JSON out, `--check` against golden cases,
//! exit code 2 and a message naming the field for malformed files.

use std::path::PathBuf;
use std::process::Command;

fn wapo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wapo"))
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/golden")).join(name)
}

#[test]
fn prints_the_output_object_as_json() {
    let out = wapo().args(["loss"]).arg(golden("case001_wapo.json")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("case001_wapo.json")).unwrap()).unwrap();
    let (a, b) = (v["loss"].as_f64().unwrap(), expected["expected"]["loss"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 + 1e-7 * b.abs(), "loss {a} vs golden {b}");
}

#[test]
fn check_passes_on_golden_cases_in_f64_and_f32() {
    for name in ["wapo004_wapo.json", "case017_gspo.json", "case035_wapo.json"] {
        for extra in [None, Some("--f32")] {
            let mut cmd = wapo();
            cmd.args(["loss", "--check"]).arg(golden(name));
            cmd.args(extra);
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{name} {extra:?}:\n{text}");
            assert!(text.contains("0 outside"), "{text}");
        }
    }
}

#[test]
fn check_fails_with_exit_1_when_expected_is_wrong() {
    let text = std::fs::read_to_string(golden("wapo000_wapo.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let loss = v["expected"]["loss"].as_f64().unwrap();
    v["expected"]["loss"] = serde_json::json!(loss + 1e-3);
    let path = std::env::temp_dir().join(format!("wapo-wrong-{}.json", std::process::id()));
    std::fs::write(&path, v.to_string()).unwrap();
    let out = wapo().args(["loss", "--check"]).arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("loss") && String::from_utf8_lossy(&out.stdout).contains("FAIL")
    );
}

#[test]
fn malformed_files_exit_2_naming_the_field() {
    let path = std::env::temp_dir().join(format!("wapo-bad-{}.json", std::process::id()));
    for (text, needle) in [
        (r#"{"format": "wapo-objective-case/1", "config": {"objective": "wapo"}}"#, "rewards"),
        (r#"{"format": "nope"}"#, "format"),
        ("{\"rewards\": [NaN]}", "NaN"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = wapo().arg("loss").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(needle), "`{err}` does not name {needle}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_file(&path);
    let out = wapo().args(["loss", "/nonexistent/case.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
