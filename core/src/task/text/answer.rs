//! Finding the final number of a completion and comparing numbers exactly.
//!
//! Numbers are compared as canonical decimal strings, never as machine
//! integers, so a 40-digit answer neither overflows nor loses digits.
//!
//! A number in text is a run of ASCII digits with
//! * an optional sign: `-` or the unicode minus `−` (U+2212) written right
//!   before the digits and not right after a letter, a digit or `)` (so
//!   `23-5` is two numbers, `= -5` and `(-5)` are minus five);
//! * optional thousands groups when the first run has 1–3 digits: `,`
//!   followed by exactly three digits (`1,234,567`; `2,3` is two numbers);
//! * an optional fraction: `.` followed by digits (`47.` is 47, the dot ends
//!   a sentence).
//!
//! Its canonical form drops commas, leading zeros of the integer part and
//! trailing zeros of the fraction, and the sign of zero: `007` and `7.0` are
//! `7`, `-0` is `0`, `1,234.50` is `1234.5`.

use alloc::string::String;
use alloc::vec::Vec;

/// A number found in text: its canonical form and its byte span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// Every number of `text`, in order.
pub fn numbers(text: &str) -> Vec<Found> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (found, end) = scan(text, i);
        out.push(found);
        i = end;
    }
    out
}

/// The canonical form of `s` when `s` (trimmed) is exactly one number.
pub fn canonical(s: &str) -> Option<String> {
    let t = s.trim();
    let first = numbers(t).into_iter().next()?;
    (first.start == 0 && first.end == t.len()).then_some(first.value)
}

/// The answer a completion gives, by the first rule that finds a number:
///
/// 1. the last `\boxed{…}`, if it holds a number: its number after its
///    last `=`, else its last number;
/// 2. the last `Answer:` or `answer is` (any case): on the first line after
///    it that holds a number, the number after that line's last `=`, else
///    its first number (`Answer: 47.`, `**Answer:** 47`);
/// 3. a first non-empty line that is only a number (an optional final `.`
///    allowed): the reply the prompt asked for, whatever runs on after it;
/// 4. the first line with a number after an `=`: the number after its last
///    `=` (`23 + 45 = 68`, then the model runs on with other sums);
/// 5. the last number in the text.
pub fn final_number(text: &str) -> Option<String> {
    boxed(text)
        .or_else(|| after_marker(text))
        .or_else(|| lone_first_line(text))
        .or_else(|| text.lines().find_map(after_last_equals))
        .or_else(|| numbers(text).pop().map(|f| f.value))
}

/// The answer of a worked solution: the first number after the last `####`,
/// else [`final_number`].
pub fn hash_number(text: &str) -> Option<String> {
    marked_number(text).or_else(|| final_number(text))
}

/// The first number after the last `####`, if that tail has one.
pub fn marked_number(text: &str) -> Option<String> {
    let at = text.rfind("####")?;
    numbers(&text[at + 4..]).into_iter().next().map(|f| f.value)
}

/// Whether the completion's answer, by [`final_number`], equals `target`
/// (any number text; canonicalized here).
pub fn same_number(target: &str, answer: Option<String>) -> bool {
    match (canonical(target), answer) {
        (Some(t), Some(a)) => t == a,
        _ => false,
    }
}

/// Whether the answer is stated explicitly: the whole completion is one
/// number, or it uses `\boxed{}` or an `Answer:` marker with a number.
pub fn states_answer(text: &str) -> bool {
    canonical(text).is_some() || boxed(text).is_some() || after_marker(text).is_some()
}

fn boxed(text: &str) -> Option<String> {
    const OPEN: &str = "\\boxed{";
    let start = text.rfind(OPEN)? + OPEN.len();
    let content = &text[start..start + braced_len(&text[start..])];
    after_last_equals(content).or_else(|| numbers(content).pop().map(|f| f.value))
}

/// Length of the text up to the `}` that closes an already opened brace, or
/// of the whole text when it never closes.
fn braced_len(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn after_marker(text: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte offset, so positions carry over.
    let lower = text.to_ascii_lowercase();
    let at = ["answer:", "answer is"].iter().filter_map(|m| lower.rfind(m).map(|i| i + m.len())).max()?;
    text[at..]
        .lines()
        .find_map(|line| after_last_equals(line).or_else(|| numbers(line).into_iter().next().map(|f| f.value)))
}

fn lone_first_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    canonical(line.strip_suffix('.').unwrap_or(line))
}

/// The first number after the last `=` of `line` that has one after it.
fn after_last_equals(line: &str) -> Option<String> {
    // One scan: that `=` is the last one before the last number.
    let found = numbers(line);
    let eq = line[..found.last()?.start].rfind('=')?;
    found.into_iter().find(|f| f.start > eq).map(|f| f.value)
}

/// The number whose first digit is at byte `start`; returns it and the byte
/// just past it.
fn scan(text: &str, start: usize) -> (Found, usize) {
    let b = text.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut end = digits_from(start);
    let mut int = String::from(&text[start..end]);
    if end - start <= 3 {
        while end < b.len() && b[end] == b',' && digits_from(end + 1) == end + 4 {
            int.push_str(&text[end + 1..end + 4]);
            end += 4;
        }
    }
    let mut frac = "";
    if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
        let frac_end = digits_from(end + 1);
        frac = &text[end + 1..frac_end];
        end = frac_end;
    }
    let (negative, begin) = sign_before(text, start);
    let value = canonical_form(negative, &int, frac);
    (Found { value, start: begin, end }, end)
}

/// Whether a minus sign belongs to the number starting at `start`, and where
/// the number (with its sign) begins.
fn sign_before(text: &str, start: usize) -> (bool, usize) {
    let head = &text[..start];
    let Some(minus) = head.chars().next_back().filter(|&c| c == '-' || c == '\u{2212}') else {
        return (false, start);
    };
    let at = start - minus.len_utf8();
    let joined = head[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == ')');
    if joined { (false, start) } else { (true, at) }
}

fn canonical_form(negative: bool, int: &str, frac: &str) -> String {
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if negative && !(int.is_empty() && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}
