//! The harness of the `fuzz_*` test binaries, each of which includes this
//! directory with `#[path]`: structured mutators of valid inputs
//! ([`bytes`], [`json`]), a runner bounded in inputs and in time, the
//! properties checked on every parse, and the replay of every input that
//! ever failed, kept under `tests/fuzz/regressions/<target>/`.
//!
//! Properties of every input: the check returns (no panic, checked with
//! `catch_unwind` on a worker thread with an 8 MiB stack, the main thread's
//! size in the CLI), within [`per_input`] (no hang), with no single
//! allocation above [`alloc::LIMIT`]; the target's own check then decides
//! whether a refusal is a clear error (it names the file and the field).
//!
//! Environment: `WAPO_FUZZ_CASES` (inputs per target, default 1000),
//! `WAPO_FUZZ_SECS` (wall-time cap per target, default 6 s), `WAPO_FUZZ_SEED`
//! (another stream than the fixed one, for longer runs by hand).

#![allow(dead_code)]

pub mod alloc;
pub mod bytes;
pub mod json;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// What a target's check made of one input when the parser behaved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Accepted,
    /// Refused with an error the check found clear.
    Refused,
}

/// A target's check: `Err` describes a violated property.
pub type Check = fn(&[u8]) -> Result<Outcome, String>;

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The most one parse may take (debug build on a shared 2-core machine).
pub fn per_input() -> Duration {
    Duration::from_secs(env_number("WAPO_FUZZ_INPUT_SECS", 5))
}

/// How long the runner waits for a result before calling the input a hang.
fn hang_after() -> Duration {
    per_input() * 4
}

struct Report {
    result: Result<Result<Outcome, String>, String>,
    largest: usize,
    took: Duration,
}

/// The thread that runs the check, so that a hang can be timed out and
/// thread-local state of a target (a policy to load into) survives between inputs.
struct Worker {
    check: Check,
    /// The input being judged, kept on disk: an abort (an allocation
    /// refused above 1 GiB, a stack overflow) ends the process before the
    /// runner can report it.
    in_flight: Option<PathBuf>,
    input: Sender<Vec<u8>>,
    report: Receiver<Report>,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl Worker {
    fn spawn(check: Check, in_flight: Option<PathBuf>) -> Worker {
        let (input, inputs) = channel::<Vec<u8>>();
        let (reports, report) = channel();
        std::thread::Builder::new()
            .name("fuzz-worker".into())
            .stack_size(8 << 20)
            .spawn(move || {
                while let Ok(bytes) = inputs.recv() {
                    alloc::take_largest();
                    let start = Instant::now();
                    let result = catch_unwind(AssertUnwindSafe(|| check(&bytes))).map_err(panic_message);
                    let r = Report { result, largest: alloc::take_largest(), took: start.elapsed() };
                    if reports.send(r).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the fuzz worker");
        Worker { check, in_flight, input, report }
    }

    /// The verdict on `bytes`: the check's outcome, or the violated property.
    fn judge(&mut self, bytes: &[u8]) -> Result<Outcome, String> {
        if let Some(path) = &self.in_flight {
            let _ = std::fs::write(path, bytes);
        }
        if self.input.send(bytes.to_vec()).is_err() {
            *self = Worker::spawn(self.check, self.in_flight.clone());
            return self.judge(bytes);
        }
        let r = match self.report.recv_timeout(hang_after()) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                // The stuck thread is left behind; the next input gets a fresh one.
                *self = Worker::spawn(self.check, self.in_flight.clone());
                return Err(format!("no result after {:?}: a hang", hang_after()));
            }
            Err(RecvTimeoutError::Disconnected) => {
                *self = Worker::spawn(self.check, self.in_flight.clone());
                return Err("the worker thread died".into());
            }
        };
        let outcome = r.result.map_err(|m| format!("panicked: {m}"))?;
        if r.largest > 0 {
            return Err(format!("allocated {} bytes at once (limit {})", r.largest, alloc::LIMIT));
        }
        if r.took > per_input() {
            return Err(format!("took {:?} (bound {:?})", r.took, per_input()));
        }
        outcome
    }
}

fn regressions_dir(target: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions")).join(target)
}

/// FNV-1a, to turn a target's name into its fixed seed and an input into a file name.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn seed(target: &str) -> [u8; 32] {
    let h = fnv(target.as_bytes()) ^ env_number("WAPO_FUZZ_SEED", 0);
    let mut s = [0u8; 32];
    for (i, chunk) in s.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(h.rotate_left(13 * i as u32)).to_le_bytes());
    }
    s
}

/// Replays every kept input of `target`; returns how many there were.
fn replay(target: &str, w: &mut Worker) -> usize {
    let dir = regressions_dir(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        if let Err(v) = w.judge(&bytes) {
            panic!("fuzz {target}: regression input {} fails again: {v}", f.display());
        }
    }
    files.len()
}

/// A short printable view of an input for the failure message.
fn escaped(bytes: &[u8]) -> String {
    let head: String = bytes.iter().take(400).flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect();
    if bytes.len() > 400 { format!("{head}… ({} bytes)", bytes.len()) } else { head }
}

fn failures_dir(target: &str) -> PathBuf {
    std::env::temp_dir().join("wapo-fuzz-failures").join(target)
}

fn fail(target: &str, bytes: &[u8], violation: &str) -> ! {
    let dir = failures_dir(target);
    let path = dir.join(format!("{:016x}.bin", fnv(bytes)));
    let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, bytes));
    let where_ = match saved {
        Ok(()) => format!("saved as {} (once fixed, keep it in {})", path.display(), regressions_dir(target).display()),
        Err(e) => format!("could not be saved: {e}"),
    };
    panic!("fuzz {target}: {violation}\ninput {where_}\ninput: {}", escaped(bytes));
}

/// Fuzzes `check` with inputs of `strategy` until the case count or the
/// time cap, after replaying the kept regressions; a failing input is
/// shrunk (except a hang), saved and reported. Prints the target's figures.
pub fn fuzz<S: Strategy<Value = Vec<u8>>>(target: &str, strategy: S, check: Check) {
    let start = Instant::now();
    let dir = failures_dir(target);
    let in_flight = std::fs::create_dir_all(&dir).ok().map(|_| dir.join("in-flight.bin"));
    if let Some(p) = &in_flight {
        let note = format!("fuzz {target}: should the process abort, the input in flight is {}\n", p.display());
        let _ = std::io::stderr().write_all(note.as_bytes());
    }
    let mut w = Worker::spawn(check, in_flight.clone());
    let replayed = replay(target, &mut w);
    let cases = env_number("WAPO_FUZZ_CASES", 1000);
    let cap = Duration::from_secs(env_number("WAPO_FUZZ_SECS", 6));
    let mut runner =
        TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed(target)));
    let (mut tried, mut accepted) = (0u64, 0u64);
    while tried < cases && start.elapsed() < cap {
        let mut tree = strategy.new_tree(&mut runner).expect("the strategy makes inputs");
        let input = tree.current();
        tried += 1;
        match w.judge(&input) {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Refused) => {}
            Err(v) if v.starts_with("no result") => fail(target, &input, &v),
            Err(v) => {
                let (input, v) = shrink(&mut w, &mut tree, input, v);
                fail(target, &input, &v)
            }
        }
    }
    let line = format!(
        "fuzz {target}: {tried} inputs ({accepted} accepted, {} refused) + {replayed} regressions in {:.1} s\n",
        tried - accepted,
        start.elapsed().as_secs_f64()
    );
    // Straight to the process's stderr: the test harness captures `eprintln!`.
    let _ = std::io::stderr().write_all(line.as_bytes());
    drop(w);
    if let Some(p) = in_flight {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_dir(&dir);
        // Left in place when another target's, or a failure, is in it.
        let _ = dir.parent().map(std::fs::remove_dir);
    }
    remove_scratch(target);
}

/// Removes the scratch directories of `target` in this process.
fn remove_scratch(target: &str) {
    let prefix = format!("wapo-fuzz-{target}-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn shrink<T: ValueTree<Value = Vec<u8>>>(w: &mut Worker, tree: &mut T, input: Vec<u8>, v: String) -> (Vec<u8>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut best = (input, v);
    let mut steps = 0;
    while steps < 400 && Instant::now() < deadline && tree.simplify() {
        steps += 1;
        let candidate = tree.current();
        match w.judge(&candidate) {
            Err(v) if !v.starts_with("no result") => best = (candidate, v),
            _ => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    best
}

/// A scratch directory of this process, thread and target.
pub fn scratch(target: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_digit(), "");
    let dir = std::env::temp_dir().join(format!("wapo-fuzz-{target}-{}-{thread}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Removes this thread's scratch directory of `target` (the fuzz runner
/// removes its workers' own).
pub fn drop_scratch(target: &str) {
    let _ = std::fs::remove_dir_all(scratch(target));
}

/// A clear error names the file it is about.
pub fn names_file(message: &str, file: &std::path::Path) -> Result<Outcome, String> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if message.contains(&name) {
        Ok(Outcome::Refused)
    } else {
        Err(format!("the error does not name the file `{name}`: {message}"))
    }
}
