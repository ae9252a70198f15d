//! Line charts of metrics over steps, as PNG and SVG: one run's reward,
//! entropy, clipped fraction and token-bin counts (`wapo train`), and
//! overlays of several runs (`wapo compare`); heatmaps of a quantity over
//! a grid of knobs (`wapo sweep`).
//!
//! Text in the PNGs is drawn with ab_glyph from an embedded DejaVu Sans
//! (assets/fonts, Bitstream Vera license), so charts render identically on
//! a machine without system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{CliError, Result};
use crate::run_dir::{Record, series};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded file is a valid TrueType font, checked by a test.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One line: a legend label and (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels and its lines.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

const SIZE: (u32, u32) = (900, 560);

impl Chart {
    /// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
    pub fn save(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        register_font();
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |e: String| CliError::Plot { path, reason: e }
        };
        {
            let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
            self.draw(&root).map_err(err(&png))?;
            root.present().map_err(|e| e.to_string()).map_err(err(&png))?;
        }
        {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            self.draw(&root).map_err(err(&svg))?;
            root.present().map_err(|e| e.to_string()).map_err(err(&svg))?;
        }
        Ok([png, svg])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let finite =
            || self.series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in finite() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        // A flat series still needs a visible range.
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.05).max(1e-6);
        let (y0, y1) = (y0 - pad, y1 + pad);

        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            let style = ShapeStyle::from(color).stroke_width(2);
            let marks = pts.len() <= 60;
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(e)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            if marks {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(e)?;
            }
        }
        if self.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(e)?;
        }
        Ok(())
    }
}

/// A grid of colored cells, each with a short text: the value of one
/// quantity over two knobs (`wapo sweep`'s stability map).
#[derive(Clone, Debug)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Column names, left to right.
    pub x_ticks: Vec<String>,
    /// Row names, bottom to top.
    pub y_ticks: Vec<String>,
    /// `values[row][col]`; NaN: no value (drawn gray).
    pub values: Vec<Vec<f64>>,
    /// `text[row][col]`, written in the cell.
    pub text: Vec<Vec<String>>,
    /// The values mapped to the two ends of the color scale.
    pub range: (f64, f64),
    /// The colors at `range.0` and `range.1`, as RGB.
    pub colors: ((u8, u8, u8), (u8, u8, u8)),
}

/// Heatmaps on one canvas, `columns` per row, under one title.
#[derive(Clone, Debug)]
pub struct HeatmapGrid {
    pub title: String,
    pub columns: usize,
    pub maps: Vec<Heatmap>,
}

impl Heatmap {
    /// The cell color of `v`: linear between the two colors, gray when NaN.
    fn color(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return RGBColor(200, 200, 200);
        }
        let (lo, hi) = self.range;
        let t = if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.0 };
        let mix = |a: u8, b: u8| (f64::from(a) + t * (f64::from(b) - f64::from(a))).round() as u8;
        let (a, b) = self.colors;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let (nx, ny) = (self.x_ticks.len().max(1), self.y_ticks.len().max(1));
        let longest = self.y_ticks.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        // Cell i spans i ± 0.5; at most n labels puts them on the integers.
        let (xs, ys) = (-0.5..nx as f64 - 0.5, -0.5..ny as f64 - 0.5);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(46)
            .y_label_area_size(40 + 8 * longest as u32)
            .build_cartesian_2d(xs, ys)
            .map_err(e)?;
        let tick = |names: &[String], v: f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx)
            .y_labels(ny)
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_label_formatter(&|v| tick(&self.x_ticks, *v))
            .y_label_formatter(&|v| tick(&self.y_ticks, *v))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        for (r, row) in self.values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let fill = self.color(v);
                chart
                    .draw_series([Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], fill.filled())])
                    .map_err(e)?;
                chart
                    .draw_series([Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], WHITE.stroke_width(2))])
                    .map_err(e)?;
                let text = self.text.get(r).and_then(|t| t.get(c)).cloned().unwrap_or_default();
                let luminance = 0.299 * f64::from(fill.0) + 0.587 * f64::from(fill.1) + 0.114 * f64::from(fill.2);
                let ink = if luminance < 128.0 { WHITE } else { BLACK };
                let style = TextStyle::from(("sans-serif", 14).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series([Text::new(text, (x, y), style)]).map_err(e)?;
            }
        }
        Ok(())
    }
}

impl HeatmapGrid {
    /// Writes `<stem>.png` and `<stem>.svg`; returns both paths.
    pub fn save(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        register_font();
        let columns = self.columns.clamp(1, self.maps.len().max(1));
        let rows = self.maps.len().div_ceil(columns).max(1);
        let cells_y = self.maps.iter().map(|m| m.y_ticks.len()).max().unwrap_or(1).max(1);
        let cells_x = self.maps.iter().map(|m| m.x_ticks.len()).max().unwrap_or(1).max(1);
        let longest = self.maps.iter().flat_map(|m| &m.y_ticks).map(|t| t.chars().count()).max().unwrap_or(0);
        let panel = (150 + 8 * longest as u32 + 100 * cells_x as u32, 110 + 48 * cells_y as u32);
        let size = (panel.0 * columns as u32, 50 + panel.1 * rows as u32);
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |e: String| CliError::Plot { path, reason: e }
        };
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            self.draw(&root, rows, columns).map_err(err(&png))?;
            root.present().map_err(|e| e.to_string()).map_err(err(&png))?;
        }
        {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            self.draw(&root, rows, columns).map_err(err(&svg))?;
            root.present().map_err(|e| e.to_string()).map_err(err(&svg))?;
        }
        Ok([png, svg])
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rows: usize,
        columns: usize,
    ) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let body = root.titled(&self.title, ("sans-serif", 22)).map_err(e)?;
        for (map, area) in self.maps.iter().zip(body.split_evenly((rows, columns))) {
            map.draw(&area)?;
        }
        Ok(())
    }
}

/// The series of `key` in `records` of `phase`, labelled `label`.
pub fn metric_series(records: &[Record], phase: &str, key: &str, label: &str) -> Series {
    Series { label: label.to_string(), points: series(records, phase, key) }
}

/// The standard charts of one run, written under `dir`; returns the files.
pub fn run_charts(records: &[Record], dir: &Path) -> Result<Vec<PathBuf>> {
    let s = |phase: &str, key: &str, label: &str| metric_series(records, phase, key, label);
    let chart = |title: &str, y: &str, series: Vec<Series>| Chart {
        title: title.into(),
        x_label: "RL step".into(),
        y_label: y.into(),
        series: series.into_iter().filter(|s| !s.points.is_empty()).collect(),
    };
    let bins = wapo_core::BinSpec::NAMES.iter().map(|b| s("rl", &format!("bins/{b}_count"), b)).collect();
    let grad_mass = ["pos", "neg"]
        .iter()
        .flat_map(|sign| {
            wapo_core::diagnostics::PROB_BINS
                .iter()
                .map(move |b| s("rl", &format!("grad_mass/{sign}/{b}"), &format!("{sign} {b}")))
        })
        .collect();
    let charts = [
        (
            "reward",
            chart(
                "Reward",
                "reward",
                vec![
                    s("rl", "rollout/reward_mean", "rollout reward (train)"),
                    s("eval", "eval/greedy_exact", "held-out greedy exact"),
                    s("eval", "eval/pass@k", "held-out pass@k"),
                    s("eval", "eval/reward_mean", "held-out sampled reward"),
                ],
            ),
        ),
        (
            "entropy",
            chart(
                "Entropy",
                "mean token entropy (nats)",
                vec![s("rl", "entropy/mean", "rollout entropy"), s("eval", "eval/entropy_mean", "held-out entropy")],
            ),
        ),
        (
            "clipped_fraction",
            chart(
                "Clipped fraction",
                "fraction of kept tokens clipped",
                vec![s("rl", "objective/clipped_fraction", "clipped fraction")],
            ),
        ),
        ("bins", chart("Token bins", "tokens per step", bins)),
        (
            "entropy_sign",
            chart(
                "Entropy of winners and losers",
                "mean token entropy (nats)",
                vec![
                    s("rl", "entropy/winners", "winners (A > 0)"),
                    s("rl", "entropy/losers", "losers (A < 0)"),
                    s("rl", "entropy/mean", "all"),
                ],
            ),
        ),
        (
            "entropy_delta",
            chart(
                "Entropy change of each update",
                "Δ mean token entropy (nats)",
                vec![
                    s("rl", "entropy/delta_measured", "measured"),
                    s("rl", "entropy/delta_pred", "midpoint rule on the real Δz"),
                    s("rl", "entropy/delta_pred_first_order", "first order in the real Δz"),
                    s("rl", "entropy/delta_pred_taxonomy", "§7 at the fitted step"),
                ],
            ),
        ),
        (
            "clipped_sign",
            chart(
                "Clipped fraction by advantage sign",
                "fraction of kept tokens clipped",
                vec![
                    s("rl", "objective/clipped_fraction_pos", "A ≥ 0"),
                    s("rl", "objective/clipped_fraction_neg", "A < 0"),
                ],
            ),
        ),
        (
            "mismatch",
            chart("Mismatch KL (ρ − log ρ − 1)", "mean over tokens", vec![s("rl", "mismatch/kl", "mismatch KL")]),
        ),
        ("grad_mass", chart("Gradient mass by probability bin", "Σ |∂loss/∂ℓ| per step", grad_mass)),
    ];
    let mut out = Vec::new();
    for (stem, c) in charts {
        out.extend(c.save(&dir.join(stem))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses() {
        assert!(plotters::style::register_font("test-face", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn heatmap_colors_interpolate_and_files_hold_the_cell_texts() {
        let map = |title: &str| Heatmap {
            title: title.into(),
            x_label: "lr".into(),
            y_label: "clip ε".into(),
            x_ticks: vec!["0.0003".into(), "0.001".into(), "0.003".into()],
            y_ticks: vec!["0.2".into(), "9".into()],
            values: vec![vec![0.0, 0.5, 1.0], vec![f64::NAN, 0.25, 0.75]],
            text: vec![vec!["0/2".into(), "1/2".into(), "2/2".into()], vec!["-".into(), "a".into(), "b".into()]],
            range: (0.0, 1.0),
            colors: ((255, 255, 255), (0, 0, 100)),
        };
        let m = map("x");
        assert_eq!(m.color(0.0), RGBColor(255, 255, 255));
        assert_eq!(m.color(1.0), RGBColor(0, 0, 100));
        // Halfway: (255 + 0) / 2 = 127.5 rounds to 128, (255 + 100) / 2 = 177.5 to 178.
        assert_eq!(m.color(0.5), RGBColor(128, 128, 178));
        assert_eq!(m.color(7.0), RGBColor(0, 0, 100));
        assert_eq!(m.color(f64::NAN), RGBColor(200, 200, 200));

        let dir = std::env::temp_dir().join(format!("wapo-heatmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let grid =
            HeatmapGrid { title: "Stability".into(), columns: 2, maps: vec![map("wapo"), map("grpo"), map("dapo")] };
        let [png, svg] = grid.save(&dir.join("stability")).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
        let text = std::fs::read_to_string(&svg).unwrap();
        for needle in ["Stability", "wapo", "dapo", "0.003", "2/2", "clip ε"] {
            assert!(text.contains(needle), "svg lacks {needle}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_png_and_svg_with_labels() {
        let dir = std::env::temp_dir().join(format!("wapo-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let chart = Chart {
            title: "Reward".into(),
            x_label: "RL step".into(),
            y_label: "reward".into(),
            series: vec![
                Series {
                    label: "wapo".into(),
                    points: (0..20).map(|i| (i as f64, (i as f64 / 20.0).sqrt())).collect(),
                },
                Series { label: "grpo".into(), points: vec![(0.0, 0.1), (5.0, f64::NAN), (19.0, 0.5)] },
            ],
        };
        let [png, svg] = chart.save(&dir.join("reward")).unwrap();
        let png_bytes = std::fs::read(&png).unwrap();
        assert_eq!(&png_bytes[1..4], b"PNG");
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("RL step") && svg_text.contains("wapo"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
