//! GSM8K's two JSONL files, one `{"question": ..., "answer": ...}` object
//! a line (other fields ignored, blank lines skipped): `train.jsonl` gives
//! the training problems and `test.jsonl` the held-out ones. The rules that
//! make a problem an example are the core's
//! ([`wapo_core::task::text::gsm8k`]); a line that breaks them, or is no
//! JSON object with string `question` and `answer`, is an [`Error`] naming
//! the file and the line.
//!
//! The dataset of `data/gsm8k/` (OpenAI's, MIT license) is built into this
//! crate with `include_str!`, so `--task gsm8k` needs no file at run time
//! wherever the binary goes; [`read`] takes another directory of the same
//! two files instead (a copy, or a dataset in the same format).

use std::path::{Path, PathBuf};

use wapo_core::task::text::TextExample;
use wapo_core::task::text::gsm8k::Gsm8kConfig;

use crate::error::{Error, Result};
use crate::jsonl::{read_lines, string_fields};

/// The file names of the two splits in a GSM8K directory.
pub const FILES: [&str; 2] = ["train.jsonl", "test.jsonl"];

/// Where the built-in copy comes from, as errors name it.
pub const BUILT_IN: &str = "data/gsm8k";

/// The built-in `train.jsonl` and `test.jsonl`.
const BUILT_IN_TEXT: [&str; 2] =
    [include_str!("../../data/gsm8k/train.jsonl"), include_str!("../../data/gsm8k/test.jsonl")];

/// The train and the test problems as examples made with `cfg`: from the
/// two files of `dir`, or from the built-in copy when `dir` is `None`.
pub fn read(dir: Option<&Path>, cfg: &Gsm8kConfig) -> Result<(Vec<TextExample>, Vec<TextExample>)> {
    let mut splits = FILES.iter().zip(BUILT_IN_TEXT).map(|(name, built_in)| match dir {
        Some(dir) => {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
            parse(&path, &bytes, cfg)
        }
        None => parse(&PathBuf::from(BUILT_IN).join(name), built_in.as_bytes(), cfg),
    });
    let train = splits.next().expect("two files")?;
    let test = splits.next().expect("two files")?;
    Ok((train, test))
}

/// The examples of `bytes`, the contents of `path`; a file with none is an
/// error.
pub fn parse(path: &Path, bytes: &[u8], cfg: &Gsm8kConfig) -> Result<Vec<TextExample>> {
    let examples = read_lines(path, bytes, |line| {
        let [question, solution] = string_fields(line, ["question", "answer"])?;
        cfg.example(&question, &solution).map_err(String::from)
    })?;
    if examples.is_empty() {
        return Err(Error::file(path, "no problems"));
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wapo_core::task::Split;
    use wapo_core::task::text::TextTask;
    use wapo_core::task::text::gsm8k::Gsm8k;

    fn repo_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(BUILT_IN)
    }

    #[test]
    fn both_splits_load_with_their_counts_and_every_gold_answer_earns_one() {
        let cfg = Gsm8kConfig::default();
        let (train, test) = read(None, &cfg).unwrap();
        assert_eq!((train.len(), test.len()), (7473, 1319));
        // The files of the repository give the same examples.
        assert_eq!(read(Some(&repo_dir()), &cfg).unwrap(), (train.clone(), test.clone()));
        let first = &test[0];
        assert!(first.prompt.starts_with("Janet\u{2019}s ducks lay 16 eggs per day."), "{}", first.prompt);
        assert!(first.prompt.ends_with("market? Show your steps, then give the final answer after ####."));
        assert_eq!(first.target, "18");
        assert!(!first.answer.contains("<<") && first.answer.ends_with("\n#### 18"), "{}", first.answer);
        let t = Gsm8k::new(cfg, train, test).unwrap();
        assert_eq!((t.train_size(), t.held_out_size()), (Some(7473), 1319));
        for split in [Split::Train, Split::Heldout] {
            for e in t.examples(split) {
                assert_eq!(t.reward(e, &e.answer), 1.0, "{e:?}");
                assert_eq!(t.reward(e, &format!("#### {}", e.target)), 1.0, "{e:?}");
            }
        }
        // Answers with thousands separators are read whole.
        assert!(t.examples(Split::Heldout).iter().any(|e| e.answer.ends_with("#### 1,600") && e.target == "1600"));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wapo-io-gsm8k-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const GOOD: &str = "{\"question\": \"What is 1 + 1?\", \"answer\": \"1 + 1 = <<1+1=2>>2\\n#### 2\"}\n";

    /// The error of a directory whose `test.jsonl` has `bad` as line 3.
    fn error_of(name: &str, bad: &[u8]) -> Error {
        let dir = scratch(name);
        std::fs::write(dir.join("train.jsonl"), GOOD.repeat(2)).unwrap();
        let test = [GOOD.as_bytes(), b"\n", bad, b"\n", GOOD.as_bytes()].concat();
        std::fs::write(dir.join("test.jsonl"), test).unwrap();
        let err = read(Some(&dir), &Gsm8kConfig::default()).unwrap_err();
        assert_eq!(err.file, dir.join("test.jsonl"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        err
    }

    #[test]
    fn a_bad_line_is_an_error_naming_the_file_and_the_line() {
        let cases: [(&str, &[u8], &str); 7] = [
            ("no-answer", b"{\"question\": \"Q?\"}", "missing field \"answer\""),
            ("no-question", b"{\"answer\": \"#### 2\"}", "missing field \"question\""),
            ("no-hashes", b"{\"question\": \"Q?\", \"answer\": \"so 2\"}", "no `####`"),
            ("no-number", b"{\"question\": \"Q?\", \"answer\": \"#### two\"}", "no number after"),
            ("not-json", b"{\"question\": \"Q?\", \"answer\": \"#### 2\"", "not JSON"),
            ("number-answer", b"{\"question\": \"Q?\", \"answer\": 2}", "field \"answer\" is a number"),
            ("empty-question", b"{\"question\": \" \", \"answer\": \"#### 2\"}", "question is empty"),
        ];
        for (name, bad, reason) in cases {
            let err = error_of(name, bad);
            assert_eq!(err.at.as_deref(), Some("line 3"), "{name}: {err}");
            assert!(err.reason.contains(reason), "{name}: {err}");
            let shown = err.to_string();
            assert!(shown.contains("test.jsonl") && shown.contains("line 3"), "{shown}");
        }
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_it() {
        let dir = scratch("missing");
        std::fs::write(dir.join("train.jsonl"), GOOD).unwrap();
        let err = read(Some(&dir), &Gsm8kConfig::default()).unwrap_err();
        assert_eq!(err.file, dir.join("test.jsonl"));
        std::fs::write(dir.join("test.jsonl"), "\n \n").unwrap();
        let err = read(Some(&dir), &Gsm8kConfig::default()).unwrap_err();
        assert_eq!((err.file, err.reason.as_str()), (dir.join("test.jsonl"), "no problems"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest! {
        #[test]
        fn no_line_panics_the_reader(line in any::<String>(), json in "[{}\\[\\]\":, a-z0-9#]{0,60}") {
            let cfg = Gsm8kConfig::default();
            for text in [line, json] {
                let _ = parse(Path::new("t.jsonl"), text.as_bytes(), &cfg);
            }
        }
    }
}
