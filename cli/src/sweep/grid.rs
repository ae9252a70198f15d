//! The grid of a sweep: objectives × learning rates × clip ε × epochs ×
//! temperatures × seeds, each axis a list from the config (`[compare]` for
//! objectives and seeds, `[sweep]` for the rest; an empty `[sweep]` list is
//! the config's one value, not swept).

use wapo_core::Objective;

use crate::config::TrainConfig;
use crate::error::{CliError, Result};

/// One run of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub objective: Objective,
    pub lr: f64,
    pub clip_eps: f64,
    pub epochs: usize,
    pub temperature: f64,
    pub seed: u64,
}

/// A point of the map: a cell without its seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub objective: Objective,
    pub lr: f64,
    pub clip_eps: f64,
    pub epochs: usize,
    pub temperature: f64,
}

impl Point {
    /// The knobs besides the objective and lr (a row of the map).
    pub fn row(&self) -> (f64, usize, f64) {
        (self.clip_eps, self.epochs, self.temperature)
    }
}

impl Cell {
    pub fn point(&self) -> Point {
        Point {
            objective: self.objective,
            lr: self.lr,
            clip_eps: self.clip_eps,
            epochs: self.epochs,
            temperature: self.temperature,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Grid {
    pub objectives: Vec<Objective>,
    pub lr: Vec<f64>,
    pub clip_eps: Vec<f64>,
    pub epochs: Vec<usize>,
    pub temperature: Vec<f64>,
    pub seeds: Vec<u64>,
    /// Which of lr, clip ε, epochs, temperature were given as lists: those
    /// name the runs and the map's axes.
    pub swept: Swept,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swept {
    pub lr: bool,
    pub clip_eps: bool,
    pub epochs: bool,
    pub temperature: bool,
}

/// `list`, or `[own]` when empty; a repeated value is an error naming `field`.
fn axis<T: PartialEq + Copy + std::fmt::Display>(field: &str, list: &[T], own: T) -> Result<Vec<T>> {
    for (i, v) in list.iter().enumerate() {
        if list[..i].contains(v) {
            return Err(CliError::config(field, format!("{v} is listed twice")));
        }
    }
    Ok(if list.is_empty() { vec![own] } else { list.to_vec() })
}

impl Grid {
    /// The grid of `cfg`; every run's config is checked before any runs.
    pub fn of(cfg: &TrainConfig) -> Result<Self> {
        let s = &cfg.sweep;
        let grid = Grid {
            objectives: axis("compare.objectives", &cfg.compare.objectives, cfg.objective.name)?,
            lr: axis("sweep.lr", &s.lr, cfg.rl.lr)?,
            clip_eps: axis("sweep.clip_eps", &s.clip_eps, cfg.objective.clip_eps)?,
            epochs: axis("sweep.epochs", &s.epochs, cfg.rl.epochs)?,
            temperature: axis("sweep.temperature", &s.temperature, cfg.objective.temperature)?,
            seeds: axis("compare.seeds", &cfg.compare.seeds, cfg.seed)?,
            swept: Swept {
                lr: !s.lr.is_empty(),
                clip_eps: !s.clip_eps.is_empty(),
                epochs: !s.epochs.is_empty(),
                temperature: !s.temperature.is_empty(),
            },
        };
        for cell in grid.cells() {
            grid.config(cfg, &cell).validate().map_err(|e| match e {
                CliError::Config { field, reason } => {
                    CliError::config(field, format!("{reason} (in sweep run {})", grid.name(&cell)))
                }
                other => other,
            })?;
        }
        Ok(grid)
    }

    /// Every cell, objectives outermost and seeds innermost.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for &objective in &self.objectives {
            for &lr in &self.lr {
                for &clip_eps in &self.clip_eps {
                    for &epochs in &self.epochs {
                        for &temperature in &self.temperature {
                            for &seed in &self.seeds {
                                out.push(Cell { objective, lr, clip_eps, epochs, temperature, seed });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The run directory's name: the objective, the swept knobs, the seed
    /// (`wapo-lr0.001-clip9-seed1`).
    pub fn name(&self, c: &Cell) -> String {
        let mut name = c.objective.to_string();
        let w = self.swept;
        if w.lr {
            name.push_str(&format!("-lr{}", c.lr));
        }
        if w.clip_eps {
            name.push_str(&format!("-clip{}", c.clip_eps));
        }
        if w.epochs {
            name.push_str(&format!("-ep{}", c.epochs));
        }
        if w.temperature {
            name.push_str(&format!("-t{}", c.temperature));
        }
        name.push_str(&format!("-seed{}", c.seed));
        name
    }

    /// The config of `cell`'s run.
    pub fn config(&self, base: &TrainConfig, c: &Cell) -> TrainConfig {
        let mut cfg = base.clone();
        cfg.objective.name = c.objective;
        cfg.rl.lr = c.lr;
        cfg.objective.clip_eps = c.clip_eps;
        cfg.rl.epochs = c.epochs;
        cfg.objective.temperature = c.temperature;
        cfg.seed = c.seed;
        cfg.name = self.name(c);
        cfg
    }

    /// The label of a row of the map: the swept knobs besides lr.
    pub fn row_label(&self, (clip_eps, epochs, temperature): (f64, usize, f64)) -> String {
        let w = self.swept;
        let mut parts = Vec::new();
        if w.clip_eps {
            parts.push(format!("ε {clip_eps}"));
        }
        if w.epochs {
            parts.push(format!("ep {epochs}"));
        }
        if w.temperature {
            parts.push(format!("T {temperature}"));
        }
        if parts.is_empty() { "-".into() } else { parts.join(", ") }
    }

    /// The names of the knobs that label the rows of the map.
    pub fn row_axes(&self) -> String {
        let w = self.swept;
        let names = [(w.clip_eps, "clip ε"), (w.epochs, "epochs"), (w.temperature, "temperature")];
        names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
    }

    /// The rows of the map: one per combination of clip ε, epochs and
    /// temperature, in grid order.
    pub fn rows(&self) -> Vec<(f64, usize, f64)> {
        let mut out = Vec::new();
        for &c in &self.clip_eps {
            for &e in &self.epochs {
                for &t in &self.temperature {
                    out.push((c, e, t));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(overrides: &[(&str, &str)]) -> Result<TrainConfig> {
        let pairs: Vec<(String, String)> = overrides.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        TrainConfig::resolve(None, &pairs)
    }

    #[test]
    fn cells_span_every_axis_and_names_show_the_swept_ones() {
        let c =
            cfg(&[("compare.objectives", "wapo,grpo"), ("compare.seeds", "0,1"), ("sweep.lr", "3e-4,1e-3")]).unwrap();
        let g = Grid::of(&c).unwrap();
        let cells = g.cells();
        assert_eq!(cells.len(), 8);
        let names: Vec<String> = cells.iter().map(|x| g.name(x)).collect();
        assert_eq!(names[0], "wapo-lr0.0003-seed0");
        assert_eq!(names[3], "wapo-lr0.001-seed1");
        assert_eq!(names[7], "grpo-lr0.001-seed1");
        // Not swept: the config's own value.
        assert!(cells.iter().all(|x| x.clip_eps == 0.2 && x.epochs == 2 && x.temperature == 1.0));
        let run = g.config(&c, &cells[5]);
        assert_eq!((run.objective.name, run.rl.lr, run.seed), (Objective::Grpo, 3e-4, 1));
        assert_eq!(run.name, "grpo-lr0.0003-seed1");
        assert_eq!(g.rows().len(), 1);
        assert_eq!(g.row_label(cells[0].point().row()), "-");
    }

    #[test]
    fn more_axes_multiply_and_label_the_rows() {
        let c = cfg(&[
            ("compare.objectives", "dapo"),
            ("compare.seeds", "3"),
            ("sweep.clip_eps", "0.2,9"),
            ("sweep.epochs", "1,4"),
            ("sweep.temperature", "0.7"),
        ])
        .unwrap();
        let g = Grid::of(&c).unwrap();
        let cells = g.cells();
        assert_eq!(cells.len(), 4);
        assert_eq!(g.name(&cells[3]), "dapo-clip9-ep4-t0.7-seed3");
        assert_eq!(g.rows(), vec![(0.2, 1, 0.7), (0.2, 4, 0.7), (9.0, 1, 0.7), (9.0, 4, 0.7)]);
        assert_eq!(g.row_label(cells[1].point().row()), "ε 0.2, ep 4, T 0.7");
        assert_eq!(g.row_axes(), "clip ε, epochs, temperature");
    }

    #[test]
    fn repeated_values_and_bad_runs_are_refused_up_front() {
        let e = Grid::of(&cfg(&[("sweep.lr", "1e-3,0.001")]).unwrap()).unwrap_err();
        assert!(matches!(&e, CliError::Config { field, .. } if field == "sweep.lr"), "{e}");
        let e = Grid::of(&cfg(&[("compare.seeds", "1,2,1")]).unwrap()).unwrap_err();
        assert!(matches!(&e, CliError::Config { field, .. } if field == "compare.seeds"), "{e}");
        // A negative learning rate fails rl.lr's own check, naming the run.
        let e = Grid::of(&cfg(&[("sweep.lr", "1e-3,-1")]).unwrap()).unwrap_err();
        match e {
            CliError::Config { field, reason } => {
                assert_eq!(field, "rl.lr");
                assert!(reason.contains("lr-1"), "{reason}");
            }
            other => panic!("{other}"),
        }
    }
}
