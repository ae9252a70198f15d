//! A safe arithmetic expression evaluator for the countdown verifier.
//!
//! Grammar: `expr := term (("+" | "-") term)*`, `term := factor (("*" | "/")
//! factor)*`, `factor := integer | "(" expr ")"`. Accepted spellings: `-` and
//! `−` for minus; `*`, `x`, `X`, `×`, `·` for times; `/` and `÷` for
//! division. There is no unary minus: every number must be one of the given
//! ones.
//!
//! Arithmetic is on whole numbers (`i128`, checked): a division that leaves
//! a remainder, a division by zero or an overflow makes the value an
//! [`ArithError`] while the syntax is still judged, so a caller can tell
//! "not an expression" from "a wrong expression". Every intermediate result
//! must be whole, as in the game Countdown, so rationals are never needed;
//! negative intermediates are allowed.
//!
//! Nesting is limited to [`MAX_DEPTH`] parentheses, so the recursive
//! descent is bounded on any input; the rest is linear in the input.

use alloc::vec::Vec;

/// The deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a text is not an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntaxError {
    /// Nothing but whitespace.
    Empty,
    /// A character that is no number, operator or parenthesis, at this byte.
    Unexpected(usize),
    /// An operator, number or parenthesis where it cannot stand, or a
    /// missing `)`; at this token.
    Misplaced(usize),
    /// More than [`MAX_DEPTH`] nested parentheses.
    TooDeep,
    /// A literal too long for `i128`.
    LiteralTooLarge,
}

/// Why a well-formed expression has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithError {
    DivisionByZero,
    /// A division with a remainder.
    NotWhole,
    Overflow,
}

/// A well-formed expression: its value and the literals it uses, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    pub value: Result<i128, ArithError>,
    pub numbers: Vec<i128>,
}

/// Parses and evaluates `src`.
pub fn evaluate(src: &str) -> Result<Evaluated, SyntaxError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(SyntaxError::Empty);
    }
    let mut p = Parser { tokens: &tokens, pos: 0, numbers: Vec::new() };
    let value = p.expr(0)?;
    if p.pos != tokens.len() {
        return Err(SyntaxError::Misplaced(p.pos));
    }
    Ok(Evaluated { value, numbers: p.numbers })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Num(i128),
    Add,
    Sub,
    Mul,
    Div,
    Open,
    Close,
}

fn tokenize(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '0'..='9' => {
                let mut v = i128::from(c as u8 - b'0');
                while let Some(&(_, d @ '0'..='9')) = chars.peek() {
                    chars.next();
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(i128::from(d as u8 - b'0')))
                        .ok_or(SyntaxError::LiteralTooLarge)?;
                }
                Tok::Num(v)
            }
            '+' => Tok::Add,
            '-' | '\u{2212}' => Tok::Sub,
            '*' | 'x' | 'X' | '\u{d7}' | '\u{b7}' => Tok::Mul,
            '/' | '\u{f7}' => Tok::Div,
            '(' => Tok::Open,
            ')' => Tok::Close,
            _ => return Err(SyntaxError::Unexpected(at)),
        };
        out.push(tok);
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Tok],
    pos: usize,
    numbers: Vec<i128>,
}

type Value = Result<i128, ArithError>;

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.tokens.get(self.pos).copied()
    }

    fn expr(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let mut acc = self.term(depth)?;
        while let Some(op @ (Tok::Add | Tok::Sub)) = self.peek() {
            self.pos += 1;
            let rhs = self.term(depth)?;
            acc = combine(op, acc, rhs);
        }
        Ok(acc)
    }

    fn term(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let mut acc = self.factor(depth)?;
        while let Some(op @ (Tok::Mul | Tok::Div)) = self.peek() {
            self.pos += 1;
            let rhs = self.factor(depth)?;
            acc = combine(op, acc, rhs);
        }
        Ok(acc)
    }

    fn factor(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        match self.peek() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                self.numbers.push(v);
                Ok(Ok(v))
            }
            Some(Tok::Open) => {
                if depth >= MAX_DEPTH {
                    return Err(SyntaxError::TooDeep);
                }
                self.pos += 1;
                let v = self.expr(depth + 1)?;
                if self.peek() != Some(Tok::Close) {
                    return Err(SyntaxError::Misplaced(self.pos));
                }
                self.pos += 1;
                Ok(v)
            }
            _ => Err(SyntaxError::Misplaced(self.pos)),
        }
    }
}

fn combine(op: Tok, a: Value, b: Value) -> Value {
    let (a, b) = (a?, b?);
    match op {
        Tok::Add => a.checked_add(b).ok_or(ArithError::Overflow),
        Tok::Sub => a.checked_sub(b).ok_or(ArithError::Overflow),
        Tok::Mul => a.checked_mul(b).ok_or(ArithError::Overflow),
        _ => {
            if b == 0 {
                Err(ArithError::DivisionByZero)
            } else if a.checked_rem(b).ok_or(ArithError::Overflow)? != 0 {
                Err(ArithError::NotWhole)
            } else {
                a.checked_div(b).ok_or(ArithError::Overflow)
            }
        }
    }
}

/// Whether `used` takes each value at most as often as `given` holds it.
pub fn uses_at_most_once(given: &[i128], used: &[i128]) -> bool {
    let mut left: Vec<i128> = given.to_vec();
    used.iter().all(|u| match left.iter().position(|g| g == u) {
        Some(i) => {
            left.swap_remove(i);
            true
        }
        None => false,
    })
}
