//! Verifiers on hand-worked strings, generators against their own
//! verifiers, splits, determinism, and no panic on any input.

extern crate std;

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use proptest::prelude::*;

use super::answer::{canonical, final_number, hash_number, math_number, numbers, same_number};
use super::arith::{Arith, ArithConfig, ArithStyle};
use super::countdown::{Countdown, CountdownConfig, candidate, parse_target, solves};
use super::expr::{ArithError, MAX_DEPTH, SyntaxError, evaluate};
use super::gsm::{Gsm, GsmConfig};
use super::gsm8k::{Gsm8k, Gsm8kConfig, without_annotations};
use super::*;
use crate::error::Error;

fn num(s: &str) -> Option<String> {
    final_number(s)
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn ex(target: &str) -> TextExample {
    TextExample { prompt: String::new(), answer: String::new(), target: target.to_string() }
}

fn arith() -> Arith {
    Arith::new(ArithConfig::default(), 0).unwrap()
}

// ---- numbers in text ----

#[test]
fn numbers_are_scanned_with_signs_groups_and_fractions() {
    let values = |s: &str| numbers(s).into_iter().map(|f| f.value).collect::<Vec<_>>();
    assert_eq!(values("23-5"), ["23", "5"]);
    assert_eq!(values("x-5 and (-5) and = −5"), ["5", "-5", "-5"]);
    assert_eq!(values("2,3 and 1,2345"), ["2", "3", "1", "2345"]);
    assert_eq!(values("12,345,678.90"), ["12345678.9"]);
    assert_eq!(values("1234,567"), ["1234", "567"]);
    assert_eq!(values("007, 7.0, -0, 47.5, 47."), ["7", "7", "0", "47.5", "47"]);
    assert_eq!(values("no digits"), Vec::<String>::new());
    let f = &numbers("is −12!")[0];
    assert_eq!((f.start, f.end), (3, 8)); // the minus sign is 3 bytes
}

#[test]
fn canonical_takes_exactly_one_number() {
    assert_eq!(canonical("  47 \n"), some("47"));
    assert_eq!(canonical("1,234"), some("1234"));
    assert_eq!(canonical("−5"), some("-5"));
    assert_eq!(canonical("47 apples"), None);
    assert_eq!(canonical("+5"), None);
    assert_eq!(canonical(""), None);
}

#[test]
fn final_number_follows_its_order_of_precedence() {
    // A bare reply, with whitespace or a full stop.
    assert_eq!(num("47"), some("47"));
    assert_eq!(num("  47  \n"), some("47"));
    assert_eq!(num("47."), some("47"));
    // Markers.
    assert_eq!(num("Answer: 47."), some("47"));
    assert_eq!(num("**Answer:** 47"), some("47"));
    assert_eq!(num("The answer is 47, I think"), some("47"));
    assert_eq!(num("answer:\n\n23 + 24 = 47"), some("47"));
    assert_eq!(num("Answer: 23 + 24 = 47"), some("47"));
    assert_eq!(num("23 + 45 = 60\nAnswer: 68"), some("68"));
    // Boxes beat markers; the last box with a number wins; unclosed boxes read to the end.
    assert_eq!(num("Answer: 3, so \\boxed{4}"), some("4"));
    assert_eq!(num("\\boxed{1} then \\boxed{2}"), some("2"));
    assert_eq!(num("\\boxed{1} then \\boxed{}, so 23 + 4 = 27"), some("27"));
    assert_eq!(num("\\boxed{x = 47}"), some("47"));
    assert_eq!(num("\\boxed{47"), some("47"));
    assert_eq!(num("The answer is \\boxed{-5}."), some("-5"));
    // A lone first line beats what runs on after it.
    assert_eq!(num("68\n\nWhat is 3 + 4? 3 + 4 = 7"), some("68"));
    // The first equation, then the model runs on.
    assert_eq!(num("23 + 45 = 68"), some("68"));
    assert_eq!(num("23 + 45 = 68\n\nWhat is 12 + 5? 12 + 5 = 17"), some("68"));
    assert_eq!(num("Sure!\n20 + 40 = 60 + 8 = 68. Done in 2 steps"), some("68"));
    assert_eq!(num("x =\n5"), some("5"));
    // Else the last number.
    assert_eq!(num("I think it is 68, or so"), some("68"));
    assert_eq!(num("Sum of 23 and 45 is 68"), some("68"));
    // Nothing to find.
    assert_eq!(num(""), None);
    assert_eq!(num("   \n "), None);
    assert_eq!(num("I do not know."), None);
}

#[test]
fn hash_number_prefers_the_last_marker() {
    assert_eq!(hash_number("12 + 7 = 19\n#### 19"), some("19"));
    assert_eq!(hash_number("#### 19\n#### 20"), some("20"));
    assert_eq!(hash_number("#### 1,019 apples"), some("1019"));
    assert_eq!(hash_number("####"), None);
    assert_eq!(hash_number("so 19 apples"), some("19"));
}

#[test]
fn adversarial_text_is_read_in_linear_time() {
    // Quadratic scans would take minutes on these.
    let eqs = format!("1{}", " =".repeat(200_000));
    assert_eq!(num(&eqs), some("1"));
    let boxes = "\\boxed{".repeat(100_000);
    assert_eq!(num(&boxes), None);
    let answers = "Answer: = ".repeat(50_000);
    assert_eq!(num(&answers), None);
    let lines = "(1 +\n".repeat(100_000);
    assert_eq!(candidate(&lines), None);
}

#[test]
fn dollars_percents_and_ratios_are_part_of_a_number() {
    let values = |s: &str| numbers(s).into_iter().map(|f| f.value).collect::<Vec<_>>();
    assert_eq!(values("$5, -$5, $-5, $1,234.50 and 50%"), ["5", "-5", "-5", "1234.5", "50"]);
    assert_eq!(values("3/4 6/8 4/2 2/6 -1/3 0/7 007/010"), ["0.75", "0.75", "2", "1/3", "-1/3", "0", "0.7"]);
    assert_eq!(values("1/2/2020, 3/4.5, 6/0 and 1.5/2"), ["1", "2", "2020", "3", "4.5", "6", "0", "1.5", "2"]);
    assert_eq!(values("1/3 = 0.333"), ["1/3", "0.333"]);
    assert_eq!(values("1/8 and 1/1024"), ["0.125", "0.0009765625"]);
    // Sides past 30 digits are two numbers; at 30 they are still reduced.
    let thirty = "1".repeat(30);
    assert_eq!(values(&format!("{thirty}/{thirty}")), ["1"]);
    let long = "1".repeat(31);
    assert_eq!(values(&format!("{long}/3")), [long.as_str(), "3"]);
    // The span takes in `$` and `%`.
    let f = &numbers("is -$12%!")[0];
    assert_eq!((f.start, f.end), (3, 8));
    assert_eq!(canonical(" $18 "), some("18"));
    assert_eq!(canonical("-$0.50"), some("-0.5"));
    assert_eq!(canonical("12.5%"), some("12.5"));
    assert_eq!(canonical("3/4"), some("0.75"));
    assert_eq!(canonical("$$5"), None);
    assert_eq!(canonical("5%%"), None);
    assert_eq!(canonical("1/2/3"), None);
    // Canonical forms are fixed points.
    for s in ["0.75", "-1/3", "1234.5", "0", "-7", "22/7"] {
        assert_eq!(canonical(s), some(s));
    }
}

#[test]
fn math_number_reads_hashes_then_boxes_then_the_last_number() {
    let m = math_number;
    assert_eq!(m("16 - 3 - 4 = 9\n9 * 2 = 18\n#### 18"), some("18"));
    assert_eq!(m("#### $1,080.00"), some("1080"));
    assert_eq!(m("#### 18\n#### 19"), some("19"));
    assert_eq!(m("so \\boxed{18} and #### 19"), some("19"));
    assert_eq!(m("#### none, so \\boxed{18}"), some("18"));
    assert_eq!(m("9 * 2 = 18, so \\boxed{x = 18} dollars in 1 day"), some("18"));
    assert_eq!(m("\\boxed{\\frac{3}{4}}"), some("0.75"));
    assert_eq!(m("\\boxed{-\\dfrac{6}{8}}"), some("-0.75"));
    assert_eq!(m("\\boxed{\\tfrac{-1}{3}}"), some("-1/3"));
    assert_eq!(m("\\boxed{\\frac{a}{3}}"), some("3"));
    // Else the last number: not the first equation, as final_number reads it.
    assert_eq!(m("16 - 3 - 4 = 9 eggs\n9 * 2 = 18\nShe makes $18 a day."), some("18"));
    assert_eq!(final_number("16 - 3 - 4 = 9 eggs\n9 * 2 = 18\nShe makes $18 a day."), some("9"));
    assert_eq!(m("It is 50%."), some("50"));
    assert_eq!(m("no numbers"), None);
    assert_eq!(m("####"), None);
    assert_eq!(m(""), None);
}

#[test]
fn fractions_in_boxes_are_read_in_linear_time() {
    let fracs = format!("\\boxed{{{}", "\\frac{".repeat(100_000));
    assert_eq!(math_number(&fracs), None);
    let digits = format!("\\boxed{{\\frac{{{}x", "9".repeat(100_000));
    assert_eq!(math_number(&digits).map(|v| v.len()), Some(100_000));
    let ratios = "1/".repeat(100_000);
    assert_eq!(math_number(&ratios), some("1"));
}

// ---- arith ----

#[test]
fn arith_reward_on_tricky_strings() {
    let t = arith();
    let r = |target: &str, completion: &str| t.reward(&ex(target), completion);
    for right in [
        "47",
        " 47 ",
        "\n47\n",
        "Answer: 47.",
        "\\boxed{47}",
        "23 + 24 = 47",
        "23 + 24 = 47\nWhat is 1 + 1? 1 + 1 = 2",
        "It is 47",
    ] {
        assert_eq!(r("47", right), 1.0, "{right:?}");
    }
    for wrong in ["48", "", "only text", "forty-seven", "4 7", "470", "47.5", "Answer: 48 (not 47)", "-47"] {
        assert_eq!(r("47", wrong), 0.0, "{wrong:?}");
    }
    assert_eq!(r("-5", "-5"), 1.0);
    assert_eq!(r("-5", "\u{2212}5"), 1.0);
    assert_eq!(r("-5", "10 - 15 = -5"), 1.0);
    assert_eq!(r("-5", "5"), 0.0);
    assert_eq!(r("-5", "x-5"), 0.0);
    assert_eq!(r("1234", "1,234"), 1.0);
    assert_eq!(r("1234", "1234.0"), 1.0);
    assert_eq!(r("1234", "1,23,4"), 0.0);
    let big = "1234567890123456789012345678901234567890";
    assert_eq!(r(big, big), 1.0);
    assert_eq!(r(big, "1,234,567,890,123,456,789,012,345,678,901,234,567,890"), 1.0);
    assert_eq!(r(big, "1234567890123456789012345678901234567891"), 0.0);
    // A target that is no number never pays.
    assert_eq!(r("forty", "forty"), 0.0);
}

#[test]
fn arith_format_bonus_is_added_when_the_answer_is_explicit() {
    let t = Arith::new(ArithConfig { format_bonus: 0.5, ..ArithConfig::default() }, 0).unwrap();
    let r = |completion: &str| t.reward(&ex("47"), completion);
    assert_eq!(r("47"), 1.5);
    assert_eq!(r("Answer: 47"), 1.5);
    assert_eq!(r("\\boxed{47}"), 1.5);
    assert_eq!(r("23 + 24 = 47"), 1.0);
    assert_eq!(r("Answer: 48"), 0.5);
    assert_eq!(r("no idea"), 0.0);
}

/// `What is A op B? …` → (A, op, B), read without the task's code.
fn read_arith(prompt: &str) -> (i128, String, i128) {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    assert_eq!(&words[..2], ["What", "is"], "{prompt}");
    let a = words[2].parse().unwrap();
    let b = words[4].trim_end_matches('?').parse().unwrap();
    (a, words[3].to_string(), b)
}

#[test]
fn arith_gold_is_the_exact_result_and_earns_one() {
    for (digits, style) in [(2, ArithStyle::Symbols), (3, ArithStyle::Words), (18, ArithStyle::Mixed)] {
        let cfg = ArithConfig { digits, operations: "+, -, x".to_string(), style, ..ArithConfig::default() };
        let t = Arith::new(cfg, 9).unwrap();
        let mut ops = BTreeSet::new();
        for split in [Split::Train, Split::Heldout] {
            for i in 0..300 {
                let e = t.example(split, i);
                let (a, op, b) = read_arith(&e.prompt);
                let low = 10i128.pow(digits as u32 - 1);
                assert!((low..10 * low).contains(&a) && (low..10 * low).contains(&b), "{}", e.prompt);
                let want = match op.as_str() {
                    "+" | "plus" => a + b,
                    "-" | "minus" => a - b,
                    "*" | "times" => a * b,
                    _ => panic!("operation {op} in {}", e.prompt),
                };
                ops.insert(op);
                assert_eq!(e.target, want.to_string(), "{}", e.prompt);
                assert_eq!(e.answer, e.target);
                assert!(e.prompt.ends_with("? Reply with only the number."), "{}", e.prompt);
                assert_eq!(t.reward(&e, &e.answer), 1.0, "{}", e.prompt);
                assert_eq!(t.reward(&e, &(want + 1).to_string()), 0.0, "{}", e.prompt);
            }
        }
        let expected = match style {
            ArithStyle::Symbols => 3,
            ArithStyle::Words => 3,
            ArithStyle::Mixed => 6,
        };
        assert_eq!(ops.len(), expected, "{ops:?}");
    }
}

#[test]
fn arith_config_is_checked() {
    let bad = |cfg: ArithConfig, field: &str| {
        let err = Arith::new(cfg, 0).unwrap_err();
        assert!(matches!(err, Error::Config { field: f, .. } if f == field), "{err:?}");
    };
    bad(ArithConfig { digits: 1, ..ArithConfig::default() }, "arith.digits");
    bad(ArithConfig { digits: 19, ..ArithConfig::default() }, "arith.digits");
    bad(ArithConfig { operations: "+/".to_string(), ..ArithConfig::default() }, "arith.operations");
    bad(ArithConfig { operations: " ,".to_string(), ..ArithConfig::default() }, "arith.operations");
    // 2 digits and one operation: 8100 problems, about 1000 held out.
    bad(ArithConfig { held_out: 600, ..ArithConfig::default() }, "arith.held_out");
    bad(ArithConfig { held_out: 0, ..ArithConfig::default() }, "arith.held_out");
    bad(ArithConfig { format_bonus: f64::NAN, ..ArithConfig::default() }, "arith.format_bonus");
    assert_eq!(Arith::new(ArithConfig { held_out: 500, ..ArithConfig::default() }, 0).unwrap().held_out_size(), 500);
}

// ---- expressions ----

#[test]
fn expressions_evaluate_by_precedence_on_whole_numbers() {
    let value = |s: &str| evaluate(s).map(|e| e.value);
    assert_eq!(value("2 + 3 * 4"), Ok(Ok(14)));
    assert_eq!(value("(2 + 3) * 4"), Ok(Ok(20)));
    assert_eq!(value("10 - 4 - 3"), Ok(Ok(3)));
    assert_eq!(value("100 / 10 / 5"), Ok(Ok(2)));
    assert_eq!(value("3 - 10"), Ok(Ok(-7)));
    assert_eq!(value("6 × 7 ÷ 3 − 2 x 2 X 1 · 1"), Ok(Ok(10)));
    assert_eq!(value("7 / 2"), Ok(Err(ArithError::NotWhole)));
    assert_eq!(value("7 / (3 - 3)"), Ok(Err(ArithError::DivisionByZero)));
    assert_eq!(value("10000000000000000000 * 10000000000000000000 * 10"), Ok(Err(ArithError::Overflow)));
    assert_eq!(value("1000000000000000000000000000000000000000"), Err(SyntaxError::LiteralTooLarge));
    assert_eq!(value(""), Err(SyntaxError::Empty));
    assert_eq!(value(" \n"), Err(SyntaxError::Empty));
    assert_eq!(value("3 + a"), Err(SyntaxError::Unexpected(4)));
    assert_eq!(value("2 * -3"), Err(SyntaxError::Misplaced(2)));
    assert_eq!(value("3 4"), Err(SyntaxError::Misplaced(1)));
    assert_eq!(value("(3 + 4"), Err(SyntaxError::Misplaced(4)));
    assert_eq!(value("3 + 4)"), Err(SyntaxError::Misplaced(3)));
    assert_eq!(evaluate("(12 + 7) * 3").unwrap().numbers, vec![12, 7, 3]);
}

#[test]
fn parenthesis_depth_is_bounded() {
    let nested = |n: usize| format!("{}3{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(evaluate(&nested(MAX_DEPTH)).map(|e| e.value), Ok(Ok(3)));
    assert_eq!(evaluate(&nested(MAX_DEPTH + 1)), Err(SyntaxError::TooDeep));
    assert_eq!(evaluate(&"(".repeat(1_000_000)), Err(SyntaxError::TooDeep));
}

// ---- countdown ----

#[test]
fn countdown_verifier_on_hand_written_expressions() {
    let given = [3, 5, 7, 12];
    for right in
        ["(12 + 7) * 3", "12 * 5 - 3", "(12+7)*3", "(12 + 7) x 3", "(12 + 7) × 3", "12 × 5 − 3", "3 * (7 + 12)"]
    {
        assert!(solves(57, &given, right), "{right}");
    }
    assert!(!solves(57, &given, "7 * 7 + 5 + 3"), "7 used twice");
    assert!(!solves(57, &given, "19 * 3"), "19 not given");
    assert!(!solves(57, &given, "57"), "57 not given");
    assert!(!solves(57, &given, "(12 + 7) * 3 + 1"), "1 not given and the value is 58");
    assert!(!solves(57, &given, "12 * 5 - 2"), "2 not given");
    assert!(!solves(57, &given, "12 + 7 * 3"), "33, not 57");
    // A number given twice may be used twice.
    assert!(solves(10, &[5, 5, 2], "5 + 5"));
    assert!(!solves(15, &[5, 5, 2], "5 + 5 + 5"));
    // Division by zero: 10 / (6 - 4 - 2).
    assert!(!solves(8, &[2, 4, 6, 10], "10 / (6 - 4 - 2)"));
    assert!(solves(8, &[2, 4, 6, 10], "10 - 2"));
    // 12·7/4 − 3 = 18 whole at every step; 7/4·12 − 3 is 18 only over the rationals.
    assert!(solves(18, &[3, 4, 7, 12], "12 * 7 / 4 - 3"));
    assert!(solves(18, &[3, 4, 7, 12], "12 × 7 ÷ 4 − 3"));
    assert!(!solves(18, &[3, 4, 7, 12], "7 / 4 * 12 - 3"));
    assert!(!solves(57, &given, ""));
}

#[test]
fn countdown_candidate_is_the_marked_or_last_expression() {
    assert_eq!(candidate("Answer: (12 + 7) * 3 = 57."), Some("(12 + 7) * 3"));
    assert_eq!(candidate("**Answer:** `12 * 5 - 3`."), Some("12 * 5 - 3"));
    assert_eq!(candidate("Let me try.\n(12 + 7) * 3 = 57\nSo that works."), Some("(12 + 7) * 3"));
    assert_eq!(candidate("19 * 3\nAnswer: nothing"), Some("nothing"));
    assert_eq!(candidate("12 * 5 - 3\n$3 * 19$"), Some("3 * 19"));
    assert_eq!(candidate("no expression here"), None);

    let t = Countdown::new(CountdownConfig::default(), 0).unwrap();
    let e = TextExample { prompt: String::new(), answer: String::new(), target: "57 using 3 5 7 12".to_string() };
    assert_eq!(t.reward(&e, "Let me try.\n(12 + 7) * 3 = 57\nSo that works."), 1.0);
    assert_eq!(t.reward(&e, "Answer: 19 * 3\n(12 + 7) * 3"), 0.0, "the marked expression is judged");
    assert_eq!(t.reward(&e, "(12 + 7) * 3\n19 * 3"), 0.0, "the last expression is judged");
    assert_eq!(t.reward(&e, "(12 + 7) * 3\nthen 19 * 3"), 1.0, "a line of prose is no expression");
    assert_eq!(t.reward(&e, ""), 0.0);
    assert_eq!(t.reward(&e, "only text"), 0.0);
    let malformed = TextExample { target: "57".to_string(), ..e.clone() };
    assert_eq!(t.reward(&malformed, "(12 + 7) * 3"), 0.0);

    let bonus = Countdown::new(CountdownConfig { format_bonus: 0.25, ..CountdownConfig::default() }, 0).unwrap();
    assert_eq!(bonus.reward(&e, "(12 + 7) * 3"), 1.25);
    assert_eq!(bonus.reward(&e, "Thinking.\nAnswer: (12 + 7) * 3"), 1.25);
    assert_eq!(bonus.reward(&e, "Thinking.\n(12 + 7) * 3"), 1.0);
    assert_eq!(bonus.reward(&e, "19 * 3"), 0.25);
}

#[test]
fn countdown_targets_are_reachable_and_in_range() {
    let cfg = CountdownConfig { min_numbers: 3, max_numbers: 6, ..CountdownConfig::default() };
    let t = Countdown::new(cfg, 3).unwrap();
    let mut counts = BTreeSet::new();
    for split in [Split::Train, Split::Heldout] {
        for i in 0..400 {
            let e = t.example(split, i);
            let (goal, numbers) = parse_target(&e.target).unwrap();
            counts.insert(numbers.len());
            assert!((3..=6).contains(&numbers.len()), "{}", e.target);
            assert!(numbers.iter().all(|n| (1..=25).contains(n)), "{}", e.target);
            assert!((1..=200).contains(&goal) && !numbers.contains(&goal), "{}", e.target);
            assert!(e.prompt.contains(&format!("equals {goal}.")), "{}", e.prompt);
            let listed: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
            assert!(e.prompt.contains(&listed.join(", ")), "{}", e.prompt);
            assert!(solves(goal, &numbers, &e.answer), "{} for {}", e.answer, e.target);
            assert_eq!(t.reward(&e, &e.answer), 1.0);
            assert_eq!(t.reward(&e, &format!("{} + 1", e.answer)), 0.0);
        }
    }
    assert_eq!(counts.len(), 4, "{counts:?}");
}

// ---- gsm ----

#[test]
fn gsm_reward_reads_after_hashes_then_boxes_then_the_last_number() {
    let t = Gsm::new(GsmConfig::default(), 0).unwrap();
    let r = |target: &str, completion: &str| t.reward(&ex(target), completion);
    assert_eq!(r("19", "#### 19"), 1.0);
    assert_eq!(r("19", "12 + 7 = 19\n#### 19"), 1.0);
    assert_eq!(r("19", "12 + 7 = 19\n####19 apples."), 1.0);
    assert_eq!(r("19", "#### 20"), 0.0);
    assert_eq!(r("19", "#### 19\n#### 20"), 0.0);
    assert_eq!(r("19", "So Mia has 19 apples."), 1.0);
    assert_eq!(r("19", "The answer is 19."), 1.0);
    assert_eq!(r("-5", "#### \u{2212}5"), 1.0);
    assert_eq!(r("1019", "#### 1,019"), 1.0);
    assert_eq!(r("19", "12 + 7 = 19, and 19 apples minus 0 is \\boxed{19}"), 1.0);
    // A multi-step solution is read at its end, not at its first step.
    assert_eq!(r("18", "16 - 3 - 4 = 9 eggs\n9 * 2 = 18\nShe makes $18."), 1.0);
    assert_eq!(r("9", "16 - 3 - 4 = 9 eggs\n9 * 2 = 18\nShe makes $18."), 0.0);
    assert_eq!(r("19", ""), 0.0);
    let bonus = Gsm::new(GsmConfig { format_bonus: 0.1, ..GsmConfig::default() }, 0).unwrap();
    assert_eq!(bonus.reward(&ex("19"), "#### 19"), 1.1);
    assert_eq!(bonus.reward(&ex("19"), "19"), 1.0);
    assert_eq!(bonus.reward(&ex("19"), "#### 18"), 0.1);
}

// ---- gsm8k ----

const DUCKS: &str =
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18";

fn gsm8k(train: &[(&str, &str)], held: &[(&str, &str)], cfg: Gsm8kConfig) -> Result<Gsm8k> {
    let read = |v: &[(&str, &str)]| v.iter().map(|(q, a)| cfg.example(q, a).unwrap()).collect::<Vec<_>>();
    Gsm8k::new(cfg.clone(), read(train), read(held))
}

#[test]
fn gsm8k_problems_become_prompts_gold_solutions_and_targets() {
    let e = Gsm8kConfig::default().example("How much does Janet make?", DUCKS).unwrap();
    assert_eq!(e.prompt, "How much does Janet make? Show your steps, then give the final answer after ####.");
    assert_eq!(e.answer, "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18");
    assert_eq!(e.target, "18");
    let plain = Gsm8kConfig { instruction: String::new(), ..Gsm8kConfig::default() };
    assert_eq!(
        plain.example("Q?", "#### 1,200").unwrap(),
        TextExample { prompt: "Q?".to_string(), answer: "#### 1,200".to_string(), target: "1200".to_string() }
    );
    let cfg = Gsm8kConfig::default();
    assert_eq!(cfg.example(" \n", "#### 3"), Err("the question is empty"));
    assert_eq!(cfg.example("Q?", "so 3"), Err("the answer has no `####` before its final number"));
    assert_eq!(cfg.example("Q?", "3 #### none"), Err("the answer has no number after its last `####`"));
    assert_eq!(cfg.example("Q?", "<<#### 3>>"), Err("the answer has no `####` before its final number"));
    assert_eq!(cfg.example("Q?", "#### 2 <<#### 3>>").unwrap().target, "2");
    assert_eq!(without_annotations("a<<1+1=2>>2 b<<x>>c"), "a2 bc");
    assert_eq!(without_annotations("a<<1 and >> b <<open"), "a b <<open");
    assert_eq!(without_annotations(">><<"), ">><<");
}

#[test]
fn gsm8k_reads_its_splits_in_order_and_pays_the_gold_answer() {
    let t = gsm8k(&[("A?", "#### 1"), ("B?", "#### 2"), ("C?", DUCKS)], &[("D?", "#### 3/4")], Gsm8kConfig::default())
        .unwrap();
    assert_eq!((t.name(), t.train_size(), t.held_out_size()), ("gsm8k", Some(3), 1));
    assert!(t.example(Split::Train, 4).prompt.starts_with("B?"));
    assert_eq!(t.example(Split::Heldout, 7).target, "0.75");
    for split in [Split::Train, Split::Heldout] {
        for e in t.examples(split) {
            assert_eq!(t.reward(e, &e.answer), 1.0, "{e:?}");
            assert_eq!(t.reward(e, "#### 19"), 0.0, "{e:?}");
            assert_eq!(t.reward(e, ""), 0.0, "{e:?}");
        }
    }
    let e = t.example(Split::Train, 2);
    for right in
        ["#### 18", "#### $18.00", "The answer is \\boxed{18}.", "9 * 2 = 18, so she makes $18.", "#### 18 dollars"]
    {
        assert_eq!(t.reward(&e, right), 1.0, "{right:?}");
    }
    for wrong in ["#### 18\n#### 9", "#### 1.8", "16 - 3 - 4 = 9", "#### 180", "eighteen"] {
        assert_eq!(t.reward(&e, wrong), 0.0, "{wrong:?}");
    }
    assert_eq!(t.reward(&t.example(Split::Heldout, 0), "#### 0.75"), 1.0);
    let bonus =
        gsm8k(&[("A?", "#### 1")], &[("B?", "#### 2")], Gsm8kConfig { format_bonus: 0.25, ..Gsm8kConfig::default() })
            .unwrap();
    let e = bonus.example(Split::Heldout, 0);
    assert_eq!((bonus.reward(&e, "#### 2"), bonus.reward(&e, "2"), bonus.reward(&e, "#### 3")), (1.25, 1.0, 0.25));
}

#[test]
fn gsm8k_refuses_an_empty_split_and_a_bad_bonus() {
    let field = |r: Result<Gsm8k>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(gsm8k(&[], &[("B?", "#### 2")], Gsm8kConfig::default())), "gsm8k");
    assert_eq!(field(gsm8k(&[("A?", "#### 1")], &[], Gsm8kConfig::default())), "gsm8k");
    let bad = Gsm8kConfig { format_bonus: 1.5, ..Gsm8kConfig::default() };
    assert_eq!(field(gsm8k(&[("A?", "#### 1")], &[("B?", "#### 2")], bad)), "gsm8k.format_bonus");
}

// ---- every task ----

fn all_tasks(seed: u64) -> Vec<Box<dyn TextTask>> {
    NAMES.iter().map(|n| by_name(n, seed, &TextOptions::default()).unwrap()).collect()
}

#[test]
fn registry_builds_every_name_and_refuses_others() {
    for (t, name) in all_tasks(1).iter().zip(NAMES) {
        assert_eq!(t.name(), name);
        assert_eq!(t.held_out_size(), 200);
        assert_eq!(t.train_size(), None);
    }
    assert!(matches!(by_name("nope", 0, &TextOptions::default()), Err(Error::Config { field: "task", .. })));
}

#[test]
fn gold_answers_earn_one_and_examples_are_deterministic() {
    let (a, b, c) = (all_tasks(42), all_tasks(42), all_tasks(43));
    for ((a, b), c) in a.iter().zip(&b).zip(&c) {
        for split in [Split::Train, Split::Heldout] {
            let same = (0..50).all(|i| a.example(split, i) == b.example(split, i));
            let differs = (0..50).any(|i| a.example(split, i) != c.example(split, i));
            assert!(same && differs, "{}", a.name());
            for i in 0..500 {
                let e = a.example(split, i);
                assert_eq!(a.reward(&e, &e.answer), 1.0, "{}: {e:?}", a.name());
                assert_eq!(a.reward(&e, ""), 0.0, "{}", a.name());
            }
        }
    }
}

#[test]
fn held_out_is_a_fixed_set_of_distinct_problems() {
    for t in all_tasks(5) {
        let n = t.held_out_size() as u64;
        let set: BTreeSet<TextExample> = (0..n).map(|i| t.example(Split::Heldout, i)).collect();
        assert_eq!(set.len() as u64, n, "{}", t.name());
        assert!((0..50).all(|i| t.example(Split::Heldout, i) == t.example(Split::Heldout, i + n)), "{}", t.name());
    }
}

/// What identifies a problem whatever its wording, read without the tasks' code.
fn problem_of(name: &str, e: &TextExample) -> String {
    match name {
        "arith" => {
            let (a, op, b) = read_arith(&e.prompt);
            format!("{a}{op}{b}")
        }
        "countdown" => {
            let (goal, mut numbers) = parse_target(&e.target).unwrap();
            numbers.sort_unstable();
            format!("{goal} {numbers:?}")
        }
        // The wording with names, items and things masked: the template and its numbers.
        _ => {
            let mut words: Vec<&str> = gsm::NAMES.iter().chain(&gsm::ITEMS).chain(&gsm::THINGS).copied().collect();
            words.sort_by_key(|w| core::cmp::Reverse(w.len()));
            words.iter().fold(e.prompt.clone(), |p, w| p.replace(w, "_"))
        }
    }
}

#[test]
fn train_and_held_out_never_share_a_problem() {
    for t in all_tasks(7) {
        let train: BTreeSet<String> = (0..3000).map(|i| problem_of(t.name(), &t.example(Split::Train, i))).collect();
        let held: BTreeSet<String> = (0..200).map(|i| problem_of(t.name(), &t.example(Split::Heldout, i))).collect();
        assert!(train.is_disjoint(&held), "{}: {:?}", t.name(), train.intersection(&held).next());
        assert!(train.len() > 1000 && held.len() > 150, "{}: {} {}", t.name(), train.len(), held.len());
    }
}

// ---- no panic on any input ----

fn soup() -> impl Strategy<Value = String> {
    let chars = vec![
        '0',
        '1',
        '7',
        '9',
        '-',
        '\u{2212}',
        '+',
        '*',
        'x',
        '\u{d7}',
        '/',
        '\u{f7}',
        '(',
        ')',
        '=',
        '.',
        ',',
        ' ',
        '\n',
        '#',
        '{',
        '}',
        '\\',
        'A',
        'a',
        'n',
        's',
        'w',
        'e',
        'r',
        ':',
        'i',
        'b',
        'o',
        'd',
        '$',
        '`',
        'é',
        '\u{1F600}',
    ];
    prop::collection::vec(prop::sample::select(chars), 0..300).prop_map(|v| v.into_iter().collect())
}

fn check_every_verifier(s: &str) {
    let _ = (final_number(s), hash_number(s), math_number(s), canonical(s), numbers(s), evaluate(s), candidate(s));
    for t in all_tasks(0) {
        let e = t.example(Split::Heldout, 0);
        for target in [e.target.as_str(), s, ""] {
            let r = t.reward(&TextExample { target: target.to_string(), ..e.clone() }, s);
            assert!(r == 0.0 || r == 1.0, "{} gave {r}", t.name());
        }
    }
}

/// A gold answer as solutions write it: any sign, `$` and `%`, long digit
/// runs, thousands groups, decimals and ratios.
fn gold_number() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        "[0-9]{1,80}(\\.[0-9]{1,40})?",
        "[1-9][0-9]{0,2}(,[0-9]{3}){1,6}(\\.[0-9]{1,5})?",
        "[0-9]{1,30}/[0-9]{0,29}[1-9]",
    ];
    let prefix = prop::sample::select(vec!["", "-", "\u{2212}", "$", "-$", "$-", "\u{2212}$"]);
    (prefix, body, prop::sample::select(vec!["", "%"])).prop_map(|(p, b, s)| format!("{p}{b}{s}"))
}

/// Text that opens and closes braces, boxes and fractions at random.
fn braces() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "\\boxed{", "\\frac{", "\\dfrac", "{", "}", "}{", "-", "$", "%", "/", "12", "3", "0", ".", ",", "####", " ",
    ]);
    prop::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_hash_marked_gold_number_is_read_back(gold in gold_number(), before in soup()) {
        prop_assert!(canonical(&gold).is_some(), "{}", gold);
        for completion in [format!("#### {gold}"), format!("{before}\n#### {gold}"), format!("\\boxed{{{gold}}}")] {
            prop_assert!(same_number(&gold, math_number(&completion)), "{:?} of {:?}", gold, completion);
        }
    }

    #[test]
    fn gsm8k_pays_a_hash_marked_gold_answer_and_nothing_panics(gold in gold_number(), steps in soup(), s in any::<String>()) {
        let cfg = Gsm8kConfig::default();
        let e = cfg.example("Q?", &format!("{steps}\n#### {gold}")).unwrap();
        let t = Gsm8k::new(cfg, vec![e.clone()], vec![e.clone()]).unwrap();
        prop_assert_eq!(t.reward(&e, &format!("#### {gold}")), 1.0, "{:?}", gold);
        prop_assert_eq!(t.reward(&e, &e.answer), 1.0, "{:?}", e.answer);
        for completion in [&s, &steps] {
            let r = t.reward(&e, completion);
            prop_assert!(r == 0.0 || r == 1.0);
        }
        // Whatever solution is accepted, its gold completion earns the reward.
        for solution in [s.clone(), format!("{steps}<<{s}>>#### {gold}"), format!("{s}<<#### 1>>\n#### {steps}")] {
            if let Ok(e) = Gsm8kConfig::default().example("Q?", &solution) {
                prop_assert!(t.reward(&e, &e.answer) == 1.0, "{:?}", solution);
            }
        }
    }

    #[test]
    fn any_one_number_is_read_back_after_hashes(s in any::<String>(), t in braces()) {
        for text in [&s, &t] {
            let _ = math_number(text);
            if canonical(text).is_some() {
                prop_assert!(same_number(text, math_number(&format!("#### {text}"))), "{:?}", text);
                // A canonical form is its own canonical form.
                let c = canonical(text).unwrap();
                prop_assert_eq!(canonical(&c), Some(c));
            }
        }
    }

    #[test]
    fn no_math_verifier_panics_on_huge_digit_runs_and_nesting(
        n in 0usize..5000, depth in 0usize..500, prefix in prop::sample::select(vec!["", "-", "$", "#### ", "\\boxed{"]),
    ) {
        let digits = "9".repeat(n);
        for text in [
            format!("{prefix}{digits}/{digits}"),
            format!("{prefix}{}{digits}{}", "{".repeat(depth), "}".repeat(depth)),
            format!("\\boxed{{{}{digits}}}{}", "\\frac{".repeat(depth), "}{7}".repeat(depth)),
            format!("{prefix}1{}", ",000".repeat(n / 4)),
        ] {
            let _ = (math_number(&text), final_number(&text), canonical(&text));
        }
    }

    #[test]
    fn no_verifier_panics_on_arbitrary_text(s in any::<String>()) {
        check_every_verifier(&s);
    }

    #[test]
    fn no_verifier_panics_on_answer_like_text(s in soup(), prefix in prop::sample::select(vec!["", "\\boxed{", "Answer:", "####", "(((", "= -"])) {
        check_every_verifier(&format!("{prefix}{s}"));
    }

    #[test]
    fn deep_parentheses_are_refused_not_recursed(open in 0usize..3000, close in 0usize..3000) {
        let s = format!("{}1+2{}", "(".repeat(open), ")".repeat(close));
        let got = evaluate(&s);
        if open == close && open <= MAX_DEPTH {
            prop_assert_eq!(got.map(|e| e.value), Ok(Ok(3)));
        } else {
            prop_assert!(got.is_err());
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn options_read_from_json_with_defaults_and_unknown_fields_refused() {
    let o: TextOptions = serde_json::from_str(
        r#"{"arith": {"digits": 3, "operations": "+-", "style": "words"}, "gsm": {"held_out": 50}}"#,
    )
    .unwrap();
    assert_eq!((o.arith.digits, o.arith.operations.as_str(), o.arith.style), (3, "+-", ArithStyle::Words));
    assert_eq!(o.arith.instruction, "Reply with only the number.");
    assert_eq!((o.gsm.held_out, o.countdown.max_numbers), (50, 4));
    assert!(serde_json::from_str::<TextOptions>(r#"{"arith": {"digit": 3}}"#).is_err());
    assert!(serde_json::from_str::<TextOptions>(r#"{"arith": {"style": "prose"}}"#).is_err());
}
