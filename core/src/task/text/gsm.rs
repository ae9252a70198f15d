//! Grade-school word problems from templates: one or two steps of sums,
//! differences, products, sharing, rates and money, with varied names,
//! items and numbers. The gold completion is a short worked solution, one
//! equation a line, then `#### <answer>`; the reward is [`worked_reward`],
//! which reads the answer by [`answer::math_number`]: the number after the
//! last `####`, else in the last `\boxed{}`, else the last number.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{
    Generated, TextExample, TextTask, answer, check_bonus, check_held_out, draw, held_out_example, held_out_set, score,
    with_instruction,
};
use crate::error::Result;
use crate::task::Split;

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct GsmConfig {
    /// Appended to the problem after a space; empty for none.
    pub instruction: String,
    /// Size of the fixed held-out set.
    pub held_out: usize,
    /// Added to the reward when the completion gives a number after `####`;
    /// 0 turns it off.
    pub format_bonus: f64,
}

/// The default instruction of the worked-solution tasks (gsm, gsm8k).
pub const INSTRUCTION: &str = "Show your steps, then give the final answer after ####.";

/// The reward of a worked solution (gsm, gsm8k): 1.0 when the completion's
/// answer by [`answer::math_number`] equals `target`, else 0.0, plus
/// `format_bonus` when the completion gives a number after `####`.
pub fn worked_reward(target: &str, completion: &str, format_bonus: f64) -> f64 {
    let correct = answer::same_number(target, answer::math_number(completion));
    score(correct, answer::marked_number(completion).is_some(), format_bonus)
}

impl Default for GsmConfig {
    fn default() -> Self {
        GsmConfig { instruction: INSTRUCTION.to_string(), held_out: 200, format_bonus: 0.0 }
    }
}

impl GsmConfig {
    pub fn validate(&self) -> Result<()> {
        // Every template alone spans well over 10^3 problems.
        check_held_out(self.held_out, 1000 * TEMPLATES.len() as u128, "gsm.held_out")?;
        check_bonus(self.format_bonus, "gsm.format_bonus")
    }
}

/// The word-problem task. An example's `target` is the answer (`"19"`).
#[derive(Clone, Debug)]
pub struct Gsm {
    cfg: GsmConfig,
    seed: u64,
    held: Vec<TextExample>,
}

impl Gsm {
    pub fn new(cfg: GsmConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let mut t = Gsm { cfg, seed, held: Vec::new() };
        t.held = held_out_set(seed, t.cfg.held_out, "gsm.held_out", |rng| t.generate(rng))?;
        Ok(t)
    }

    fn generate(&self, rng: &mut ChaCha8Rng) -> Generated {
        let id = rng.random_range(0..TEMPLATES.len());
        let mut w = Writer { rng, numbers: Vec::new(), steps: Vec::new() };
        let (story, result) = TEMPLATES[id](&mut w);
        let prompt = with_instruction(story, &self.cfg.instruction);
        let mut answer = w.steps.join("\n");
        answer.push_str(&format!("\n#### {result}"));
        let drawn: Vec<String> = w.numbers.iter().map(i64::to_string).collect();
        Generated {
            key: format!("{id}:{}", drawn.join(",")),
            example: TextExample { prompt, answer, target: result.to_string() },
        }
    }
}

impl TextTask for Gsm {
    fn name(&self) -> &str {
        "gsm"
    }
    fn example(&self, split: Split, index: u64) -> TextExample {
        match split {
            Split::Heldout => held_out_example(&self.held, index),
            Split::Train => draw(self.seed, split, index, &mut |rng| self.generate(rng)).example,
        }
    }
    fn reward(&self, example: &TextExample, completion: &str) -> f64 {
        worked_reward(&example.target, completion, self.cfg.format_bonus)
    }
    fn answer(&self, _: &TextExample, completion: &str) -> Option<String> {
        answer::math_number(completion)
    }
    fn held_out_size(&self) -> usize {
        self.held.len()
    }
}

pub(super) const NAMES: [&str; 32] = [
    "Mia", "Liam", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Diego", "Hana", "Ivan",
    "Chloe", "Mateo", "Priya", "Ethan", "Fatima", "Lucas", "Yuki", "Grace", "Tariq", "Nora", "Samuel", "Aisha", "Leo",
    "Maya", "Felix", "Ines", "Kofi", "Elena",
];
pub(super) const ITEMS: [&str; 12] = [
    "apples", "pencils", "stickers", "cards", "books", "crayons", "stamps", "buttons", "oranges", "coins", "beads",
    "toy cars",
];
pub(super) const THINGS: [&str; 6] = ["book", "toy", "hat", "board game", "kite", "scarf"];

/// What a template draws with: the RNG, the numbers that identify the
/// problem (its split key) and the solution's equations.
struct Writer<'a> {
    rng: &'a mut ChaCha8Rng,
    numbers: Vec<i64>,
    steps: Vec<String>,
}

impl Writer<'_> {
    /// A number in `lo..=hi`, part of the problem's identity.
    fn num(&mut self, lo: i64, hi: i64) -> i64 {
        let v = self.rng.random_range(lo..=hi);
        self.numbers.push(v);
        v
    }
    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.rng.random_range(0..from.len())]
    }
    /// Two different names.
    fn names(&mut self) -> (&'static str, &'static str) {
        let a = self.rng.random_range(0..NAMES.len());
        let b = (a + self.rng.random_range(1..NAMES.len())) % NAMES.len();
        (NAMES[a], NAMES[b])
    }
    /// Records the equation `a op b = r` as a solution step and returns r.
    fn step(&mut self, a: i64, op: char, b: i64) -> i64 {
        let r = match op {
            '+' => a + b,
            '-' => a - b,
            '*' => a * b,
            _ => a / b,
        };
        self.steps.push(format!("{a} {op} {b} = {r}"));
        r
    }
}

type Template = fn(&mut Writer<'_>) -> (String, i64);

/// The templates; each returns the problem text and its answer. Numbers are
/// drawn so that every answer is a whole number of at least 0 and every
/// division is exact.
const TEMPLATES: [Template; 25] = [
    |w| {
        let ((a, _), item) = (w.names(), w.pick(&ITEMS));
        let (x, y) = (w.num(3, 60), w.num(2, 40));
        let r = w.step(x, '+', y);
        (format!("{a} has {x} {item}. {a} buys {y} more. How many {item} does {a} have now?"), r)
    },
    |w| {
        let ((a, b), item) = (w.names(), w.pick(&ITEMS));
        let x = w.num(20, 99);
        let y = w.num(1, x - 1);
        let r = w.step(x, '-', y);
        (format!("{a} has {x} {item} and gives {y} of them to {b}. How many {item} does {a} have left?"), r)
    },
    |w| {
        let ((a, _), item) = (w.names(), w.pick(&ITEMS));
        let (x, y) = (w.num(2, 12), w.num(3, 25));
        let r = w.step(x, '*', y);
        (format!("{a} has {x} boxes with {y} {item} in each box. How many {item} are there in all?"), r)
    },
    |w| {
        let ((a, _), item) = (w.names(), w.pick(&ITEMS));
        let (each, friends) = (w.num(2, 15), w.num(2, 10));
        let total = each * friends;
        let r = w.step(total, '/', friends);
        (format!("{a} shares {total} {item} equally among {friends} friends. How many {item} does each friend get?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (rate, hours) = (w.num(8, 30), w.num(2, 12));
        let r = w.step(rate, '*', hours);
        (format!("{a} earns ${rate} per hour and works {hours} hours. How many dollars does {a} earn?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (n, price) = (w.num(2, 6), w.num(2, 9));
        let bill = if n * price < 20 { 20 } else { 100 };
        let cost = w.step(n, '*', price);
        let r = w.step(bill, '-', cost);
        (
            format!(
                "{a} buys {n} notebooks at ${price} each and pays with a ${bill} bill. How many dollars of change does {a} get?"
            ),
            r,
        )
    },
    |w| {
        let (a, _) = w.names();
        let (per_day, days, spare) = (w.num(5, 30), w.num(2, 7), w.num(10, 200));
        let pages = per_day * days + spare;
        let read = w.step(per_day, '*', days);
        let r = w.step(pages, '-', read);
        (
            format!(
                "A book has {pages} pages. {a} reads {per_day} pages a day for {days} days. How many pages are left to read?"
            ),
            r,
        )
    },
    |w| {
        let ((a, _), item) = (w.names(), w.pick(&ITEMS));
        let (had, packs, per) = (w.num(1, 30), w.num(2, 8), w.num(3, 12));
        let bought = w.step(packs, '*', per);
        let r = w.step(had, '+', bought);
        (
            format!(
                "{a} has {had} {item}. {a} buys {packs} packs with {per} {item} in each pack. How many {item} does {a} have now?"
            ),
            r,
        )
    },
    |w| {
        let (red, blue, green) = (w.num(2, 40), w.num(2, 40), w.num(2, 40));
        let two = w.step(red, '+', blue);
        let r = w.step(two, '+', green);
        (format!("A jar holds {red} red, {blue} blue and {green} green marbles. How many marbles are in the jar?"), r)
    },
    |w| {
        let (speed, hours) = (w.num(20, 70), w.num(2, 6));
        let r = w.step(speed, '*', hours);
        (format!("A train travels at {speed} miles per hour for {hours} hours. How many miles does it travel?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (weekly, weeks) = (w.num(3, 25), w.num(2, 12));
        let goal = weekly * weeks;
        let r = w.step(goal, '/', weekly);
        (format!("{a} saves ${weekly} each week. How many weeks does {a} need to save ${goal}?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (friends, each, eaten) = (w.num(2, 6), w.num(2, 8), w.num(1, 10));
        let baked = friends * each + eaten;
        let rest = w.step(baked, '-', eaten);
        let r = w.step(rest, '/', friends);
        (
            format!(
                "{a} bakes {baked} cookies, eats {eaten}, and shares the rest equally among {friends} friends. How many cookies does each friend get?"
            ),
            r,
        )
    },
    |w| {
        let (girls, more) = (w.num(8, 20), w.num(1, 6));
        let boys = w.step(girls, '+', more);
        let r = w.step(girls, '+', boys);
        (format!("A class has {girls} girls and {more} more boys than girls. How many students are in the class?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let adult_price = w.num(6, 15);
        let child_price = w.num(2, adult_price - 1);
        let (adults, children) = (w.num(1, 5), w.num(1, 6));
        let x = w.step(adults, '*', adult_price);
        let y = w.step(children, '*', child_price);
        let r = w.step(x, '+', y);
        (
            format!(
                "Adult tickets cost ${adult_price} and child tickets cost ${child_price}. {a} buys {adults} adult tickets and {children} child tickets. How many dollars does {a} spend?"
            ),
            r,
        )
    },
    |w| {
        let ((a, b), item) = (w.names(), w.pick(&ITEMS));
        let theirs = w.num(3, 40);
        let mine = w.step(2, '*', theirs);
        let r = w.step(theirs, '+', mine);
        (
            format!(
                "{a} has twice as many {item} as {b}. {b} has {theirs} {item}. How many {item} do they have together?"
            ),
            r,
        )
    },
    |w| {
        let (rows, per_row) = (w.num(3, 12), w.num(4, 15));
        let died = w.num(1, 12);
        let planted = w.step(rows, '*', per_row);
        let r = w.step(planted, '-', died);
        (format!("A garden has {rows} rows of {per_row} plants. {died} plants die. How many plants are left?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (trays, per_tray) = (w.num(2, 6), w.num(6, 12));
        let sold = w.num(1, trays * per_tray - 1);
        let baked = w.step(trays, '*', per_tray);
        let r = w.step(baked, '-', sold);
        (
            format!(
                "{a} bakes {trays} trays of {per_tray} muffins and sells {sold} of them. How many muffins are left?"
            ),
            r,
        )
    },
    |w| {
        let ((a, _), thing) = (w.names(), w.pick(&THINGS));
        let money = w.num(30, 100);
        let on_thing = w.num(1, money / 2);
        let on_lunch = w.num(1, money - on_thing - 1);
        let left = w.step(money, '-', on_thing);
        let r = w.step(left, '-', on_lunch);
        (
            format!(
                "{a} has ${money}. {a} spends ${on_thing} on a {thing} and ${on_lunch} on lunch. How many dollars does {a} have left?"
            ),
            r,
        )
    },
    |w| {
        let riders = w.num(10, 40);
        let (off, on) = (w.num(1, riders), w.num(1, 20));
        let stayed = w.step(riders, '-', off);
        let r = w.step(stayed, '+', on);
        (
            format!(
                "A bus has {riders} passengers. At a stop, {off} get off and {on} get on. How many passengers are on the bus now?"
            ),
            r,
        )
    },
    |w| {
        let (a, b) = w.names();
        let (per_day, days) = (w.num(2, 12), w.num(2, 7));
        let given = w.num(1, per_day * days - 1);
        let found = w.step(per_day, '*', days);
        let r = w.step(found, '-', given);
        (
            format!(
                "{a} collects {per_day} shells a day for {days} days, then gives {given} shells to {b}. How many shells does {a} have left?"
            ),
            r,
        )
    },
    |w| {
        let (a, _) = w.names();
        let slices = [4, 6, 8, 10, 12][w.rng.random_range(0..5)];
        w.numbers.push(slices);
        let pizzas = w.num(1, 6);
        let total = pizzas * slices;
        let sharers: Vec<i64> = (2..=12).filter(|p| total % p == 0).collect();
        let people = sharers[w.rng.random_range(0..sharers.len())];
        w.numbers.push(people);
        let all = w.step(pizzas, '*', slices);
        let r = w.step(all, '/', people);
        (
            format!(
                "{a} orders {pizzas} pizzas cut into {slices} slices each. {people} people share the slices equally. How many slices does each person get?"
            ),
            r,
        )
    },
    |w| {
        let price = w.num(5, 40);
        let off = w.num(1, price - 1);
        let n = w.num(2, 6);
        let sale = w.step(price, '-', off);
        let r = w.step(n, '*', sale);
        (
            format!(
                "A shirt costs ${price}. On sale it is ${off} cheaper. How many dollars do {n} shirts cost on sale?"
            ),
            r,
        )
    },
    |w| {
        let (rate, minutes) = (w.num(2, 10), w.num(3, 20));
        let liters = rate * minutes;
        let r = w.step(liters, '/', rate);
        (
            format!(
                "A tank holds {liters} liters. A hose fills it at {rate} liters per minute. How many minutes does it take to fill the empty tank?"
            ),
            r,
        )
    },
    |w| {
        let (a, b) = w.names();
        let (age, older) = (w.num(5, 15), w.num(2, 30));
        let theirs = w.step(age, '+', older);
        let r = w.step(age, '+', theirs);
        (format!("{a} is {age} years old. {b} is {older} years older than {a}. What is the sum of their ages?"), r)
    },
    |w| {
        let (a, _) = w.names();
        let (km, weeks) = (w.num(2, 12), w.num(2, 8));
        let days = w.step(7, '*', weeks);
        let r = w.step(km, '*', days);
        (format!("{a} runs {km} kilometers every day. How many kilometers does {a} run in {weeks} weeks?"), r)
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use rand::SeedableRng;

    /// Checks `a op b = r` by its own arithmetic; returns r.
    fn checked_step(line: &str) -> i64 {
        let w: Vec<&str> = line.split(' ').collect();
        assert_eq!((w.len(), w[3]), (5, "="), "{line}");
        let (a, b, r): (i64, i64, i64) = (w[0].parse().unwrap(), w[2].parse().unwrap(), w[4].parse().unwrap());
        let ok = match w[1] {
            "+" => a + b == r,
            "-" => a - b == r,
            "*" => a * b == r,
            "/" => b != 0 && b * r == a,
            op => panic!("operation {op} in {line}"),
        };
        assert!(ok, "{line}");
        r
    }

    #[test]
    fn every_template_is_drawn_and_its_solution_adds_up() {
        assert!(TEMPLATES.len() >= 20);
        let t = Gsm::new(GsmConfig::default(), 1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut seen = BTreeSet::new();
        for _ in 0..3000 {
            let g = t.generate(&mut rng);
            seen.insert(g.key.split(':').next().unwrap().to_string());
            let e = g.example;
            let (steps, tail) = e.answer.rsplit_once("\n#### ").unwrap();
            let results: Vec<i64> = steps.lines().map(checked_step).collect();
            assert!((1..=3).contains(&results.len()), "{}", e.answer);
            assert_eq!(results.last().unwrap().to_string(), tail, "{}", e.answer);
            assert_eq!(tail, e.target);
            assert!(e.target.parse::<i64>().unwrap() >= 0, "{}", e.prompt);
            assert!(e.prompt.ends_with("? Show your steps, then give the final answer after ####."), "{}", e.prompt);
        }
        assert_eq!(seen.len(), TEMPLATES.len());
    }

    #[test]
    fn names_vary_within_a_template() {
        let t = Gsm::new(GsmConfig::default(), 1).unwrap();
        let first_words: BTreeSet<String> =
            (0..400).map(|i| t.example(Split::Train, i).prompt.split(' ').next().unwrap().to_string()).collect();
        assert!(first_words.len() > 20, "{first_words:?}");
    }
}
