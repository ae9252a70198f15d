//! The stability map: the sweep's records over seeds, per point of the
//! grid — as heatmaps (`stability.png`, `.svg`) and as a table.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::plot::{Heatmap, HeatmapGrid};
use crate::summary::{Table, num};
use crate::sweep::grid::{Grid, Point};
use crate::sweep::record::SweepRecord;

/// The runs of one point, its seeds.
pub struct PointRuns<'a> {
    pub point: Point,
    pub runs: Vec<&'a SweepRecord>,
}

impl PointRuns<'_> {
    pub fn collapsed(&self) -> usize {
        self.runs.iter().filter(|r| r.collapsed).count()
    }

    /// The mean over seeds of the values present.
    fn mean(&self, f: impl Fn(&SweepRecord) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.runs.iter().filter_map(|r| f(r)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    pub fn final_reward(&self) -> Option<f64> {
        self.mean(|r| r.final_reward)
    }
    pub fn best_reward(&self) -> Option<f64> {
        self.mean(|r| r.best_reward)
    }
    pub fn final_entropy(&self) -> Option<f64> {
        self.mean(|r| r.final_entropy)
    }
}

fn same_point(r: &SweepRecord, p: &Point) -> bool {
    r.objective == p.objective.to_string()
        && r.lr == p.lr
        && r.clip_eps == p.clip_eps
        && r.epochs == p.epochs
        && r.temperature == p.temperature
}

/// Every point of `grid` in grid order, with its records.
pub fn points<'a>(grid: &Grid, records: &'a [SweepRecord]) -> Vec<PointRuns<'a>> {
    let mut out: Vec<PointRuns<'a>> = Vec::new();
    for cell in grid.cells() {
        let point = cell.point();
        if out.iter().any(|p| p.point == point) {
            continue;
        }
        let runs = records.iter().filter(|r| same_point(r, &point)).collect();
        out.push(PointRuns { point, runs });
    }
    out
}

/// One row per point: collapses over seeds (with the rule and step of
/// each), and the means over seeds of the final and best held-out reward
/// and of the final rollout entropy.
pub fn table(grid: &Grid, records: &[SweepRecord]) -> Table {
    let extra = grid.rows().len() > 1;
    let mut headers = vec!["objective", "lr"];
    if extra {
        headers.push("knobs");
    }
    headers.extend(["collapsed", "rule@step per seed", "start", "final", "best", "entropy end"]);
    let mut t = Table::new(headers);
    for p in points(grid, records) {
        let fates: Vec<String> = p
            .runs
            .iter()
            .map(|r| match (&r.collapse_rule, r.collapse_step) {
                (Some(rule), Some(step)) => format!("{rule}@{step}"),
                _ => "-".into(),
            })
            .collect();
        let mut row = vec![p.point.objective.to_string(), p.point.lr.to_string()];
        if extra {
            row.push(grid.row_label(p.point.row()));
        }
        row.extend([
            format!("{}/{}", p.collapsed(), p.runs.len()),
            fates.join(" "),
            num(p.mean(|r| r.start_reward)),
            num(p.final_reward()),
            num(p.best_reward()),
            num(p.final_entropy()),
        ]);
        t.row(row);
    }
    t
}

const RATE_COLORS: ((u8, u8, u8), (u8, u8, u8)) = ((232, 245, 233), (198, 40, 40));
const REWARD_COLORS: ((u8, u8, u8), (u8, u8, u8)) = ((250, 250, 250), (21, 101, 192));

/// Per objective (a column), the collapse rate over seeds and the mean
/// final (best) held-out reward, over lr × the other swept knobs.
pub fn save(grid: &Grid, records: &[SweepRecord], title: &str, stem: &Path) -> Result<[PathBuf; 2]> {
    let pts = points(grid, records);
    let rows = grid.rows();
    let x_ticks: Vec<String> = grid.lr.iter().map(|v| v.to_string()).collect();
    let y_label = grid.row_axes();
    let at =
        |obj, lr: f64, row| pts.iter().find(|p| p.point.objective == obj && p.point.lr == lr && p.point.row() == row);
    let y_ticks: Vec<String> = rows.iter().map(|&r| grid.row_label(r)).collect();
    let mut maps = Vec::new();
    for pass in [Pass::Collapse, Pass::Reward] {
        for &obj in &grid.objectives {
            let (title, colors) = match pass {
                Pass::Collapse => (format!("{obj}: runs collapsed"), RATE_COLORS),
                Pass::Reward => (format!("{obj}: held-out final / best"), REWARD_COLORS),
            };
            let mut m = Heatmap {
                title,
                x_label: "learning rate".into(),
                y_label: y_label.clone(),
                x_ticks: x_ticks.clone(),
                y_ticks: y_ticks.clone(),
                values: Vec::new(),
                text: Vec::new(),
                range: (0.0, 1.0),
                colors,
            };
            for &row in &rows {
                let cells: Vec<(f64, String)> = grid.lr.iter().map(|&lr| pass.cell(at(obj, lr, row))).collect();
                m.values.push(cells.iter().map(|c| c.0).collect());
                m.text.push(cells.into_iter().map(|c| c.1).collect());
            }
            maps.push(m);
        }
    }
    HeatmapGrid { title: title.to_string(), columns: grid.objectives.len(), maps }.save(stem)
}

#[derive(Clone, Copy)]
enum Pass {
    Collapse,
    Reward,
}

impl Pass {
    /// A cell's value and text: the fraction of seeds collapsed, or the
    /// mean final held-out reward (and the mean best).
    fn cell(self, p: Option<&PointRuns<'_>>) -> (f64, String) {
        let Some(p) = p.filter(|p| !p.runs.is_empty()) else { return (f64::NAN, "-".into()) };
        match self {
            Pass::Collapse => {
                (p.collapsed() as f64 / p.runs.len() as f64, format!("{}/{}", p.collapsed(), p.runs.len()))
            }
            Pass::Reward => (
                p.final_reward().unwrap_or(f64::NAN),
                format!("{} / {}", short(p.final_reward()), short(p.best_reward())),
            ),
        }
    }
}

/// Two decimals, `-` when absent.
fn short(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or("-".into(), |x| format!("{x:.2}"))
}
