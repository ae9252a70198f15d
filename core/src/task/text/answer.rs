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
//!   a sentence);
//! * or else an optional denominator: `/` followed by digits, the two sides
//!   whole numbers of at most 30 digits, the denominator not 0, and not part
//!   of a longer chain (`1/2/2020`, `3/4.5` and `6/0` are several numbers);
//! * an optional `$` right before the digits or the sign (`$5`, `-$5`,
//!   `$-5`) and `%` right after (`50%`), which belong to the number's span
//!   and leave its value alone.
//!
//! Its canonical form drops commas, leading zeros of the integer part and
//! trailing zeros of the fraction, and the sign of zero: `007` and `7.0` are
//! `7`, `-0` is `0`, `1,234.50` is `1234.5`. A ratio is reduced and written
//! as a decimal when it has a finite one (`3/4` and `6/8` are `0.75`, `4/2`
//! is `2`), else as `p/q` in lowest terms (`2/6` is `1/3`), so two numbers
//! are equal exactly when their canonical forms are.

use alloc::format;
use alloc::string::{String, ToString};
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

/// The answer of a worked math solution, by the first rule that finds a
/// number: the first number after the last `####`; else that of the last
/// `\boxed{…}` (as in [`final_number`], with `\frac{3}{4}` read as `3/4`);
/// else the last number in the text.
///
/// Unlike [`final_number`] it never reads the first equation of the text:
/// a worked solution's first lines are its intermediate steps.
pub fn math_number(text: &str) -> Option<String> {
    marked_number(text).or_else(|| boxed(text)).or_else(|| numbers(text).pop().map(|f| f.value))
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
    let content = latex_fractions(&text[start..start + braced_len(&text[start..])]);
    after_last_equals(&content).or_else(|| numbers(&content).pop().map(|f| f.value))
}

/// `s` with every `\frac{p}{q}` (or `\dfrac`, `\tfrac`) of whole numbers
/// written `p/q`; other LaTeX is left as it is.
fn latex_fractions(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = s[i..].find('\\') {
        let at = i + off;
        out.push_str(&s[i..at]);
        match latex_fraction(&s[at..]) {
            Some((p, q, len)) => {
                out.push_str(p);
                out.push('/');
                out.push_str(q);
                i = at + len;
            }
            None => {
                out.push('\\');
                i = at + 1;
            }
        }
    }
    out.push_str(&s[i..]);
    out
}

/// The numerator, the denominator and the length of the `\frac{p}{q}` at
/// the start of `s`: `p` digits with an optional `-`, `q` digits. Each part
/// is read only as far as its digits go, so no text is scanned twice.
fn latex_fraction(s: &str) -> Option<(&str, &str, usize)> {
    let rest = ["\\frac", "\\dfrac", "\\tfrac"].iter().find_map(|c| s.strip_prefix(c))?;
    let (p, after_p) = braced_digits(rest, true)?;
    let (q, after_q) = braced_digits(after_p, false)?;
    Some((p, q, s.len() - after_q.len()))
}

/// `{digits}` at the start of `s` (a leading `-` allowed when `signed`): the
/// digits and what follows the `}`.
fn braced_digits(s: &str, signed: bool) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('{')?;
    let sign = usize::from(signed && inner.starts_with('-'));
    let digits = inner[sign..].bytes().take_while(u8::is_ascii_digit).count();
    let end = sign + digits;
    (digits > 0 && inner[end..].starts_with('}')).then(|| (&inner[..end], &inner[end + 1..]))
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
    let mut end = digits_from(b, start);
    let mut int = String::from(&text[start..end]);
    if end - start <= 3 {
        while end < b.len() && b[end] == b',' && digits_from(b, end + 1) == end + 4 {
            int.push_str(&text[end + 1..end + 4]);
            end += 4;
        }
    }
    let (negative, begin) = sign_before(text, start);
    let value = if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
        let frac_end = digits_from(b, end + 1);
        let frac = &text[end + 1..frac_end];
        end = frac_end;
        canonical_form(negative, &int, frac)
    } else if let Some((value, ratio_end)) = ratio(text, start, end, &int, negative) {
        end = ratio_end;
        value
    } else {
        canonical_form(negative, &int, "")
    };
    if b.get(end) == Some(&b'%') {
        end += 1;
    }
    (Found { value, start: begin, end }, end)
}

/// The first byte at or after `i` that is not an ASCII digit.
fn digits_from(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Most digits of either side of a ratio; 10^30 · 10 still fits a `u128`.
const RATIO_DIGITS: usize = 30;

/// The canonical value of the ratio whose numerator `int` spans
/// `start..end`, and the byte past its denominator; `None` when no ratio
/// starts there (see the module docs).
fn ratio(text: &str, start: usize, end: usize, int: &str, negative: bool) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if b.get(end) != Some(&b'/') || !digit_at(end + 1) || (start > 0 && b[start - 1] == b'/') {
        return None;
    }
    let den_end = digits_from(b, end + 1);
    if matches!(b.get(den_end), Some(b'/' | b'.')) && digit_at(den_end + 1) {
        return None;
    }
    let small = |digits: &str| {
        let digits = digits.trim_start_matches('0');
        if digits.len() > RATIO_DIGITS {
            return None;
        }
        Some(digits.bytes().fold(0u128, |acc, d| acc * 10 + u128::from(d - b'0')))
    };
    let (p, q) = (small(int)?, small(&text[end + 1..den_end])?);
    (q != 0).then(|| (ratio_form(negative, p, q), den_end))
}

/// The canonical form of ±p/q (q ≠ 0): its decimal when finite, else `p/q`
/// in lowest terms.
fn ratio_form(negative: bool, p: u128, q: u128) -> String {
    let g = gcd(p, q);
    let (p, q) = (p / g, q / g);
    let mut rest = q;
    for f in [2, 5] {
        while rest % f == 0 {
            rest /= f;
        }
    }
    if rest != 1 {
        // Lowest terms with q > 1, so p ≠ 0 and the sign stays.
        let sign = if negative { "-" } else { "" };
        return format!("{sign}{p}/{q}");
    }
    // q = 2^a 5^b: at most max(a, b) ≤ 100 digits after the point.
    let mut frac = String::new();
    let mut r = p % q;
    while r != 0 {
        r *= 10;
        frac.push(char::from(b'0' + (r / q) as u8));
        r %= q;
    }
    canonical_form(negative, &(p / q).to_string(), &frac)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Whether a minus sign belongs to the number starting at `start`, and where
/// the number (with its sign and a `$`) begins.
fn sign_before(text: &str, start: usize) -> (bool, usize) {
    // `$5`, `-$5`: the dollar right before the digits.
    let dollar = text[..start].ends_with('$');
    let at = if dollar { start - 1 } else { start };
    let head = &text[..at];
    let Some(minus) = head.chars().next_back().filter(|&c| c == '-' || c == '\u{2212}') else {
        return (false, at);
    };
    let m = at - minus.len_utf8();
    let joined = head[..m].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == ')');
    if joined {
        return (false, at);
    }
    // `$-5`: the dollar before the sign.
    let begin = if !dollar && head[..m].ends_with('$') { m - 1 } else { m };
    (true, begin)
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
