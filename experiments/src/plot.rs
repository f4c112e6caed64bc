//! Figures for the report: line/scatter charts written as both PNG and SVG.
//!
//! Text on PNGs needs a real font: DejaVu Sans is embedded (`assets/fonts`, Bitstream Vera licence)
//! and registered once. Log axes are drawn by transforming the data (`log10`) and saying so in the
//! axis label, which keeps one code path for every chart.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Figure;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TTF; a failure here would only lose PNG text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Connected line.
    Line,
    /// Points only.
    Points,
    /// Dashed-looking thin line (drawn as small points along the line).
    Reference,
}

/// One series of (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Data points (non-finite points are skipped and counted in the caption by the caller).
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub mark: Mark,
}

impl Series {
    /// A connected line.
    #[must_use]
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            mark: Mark::Line,
        }
    }
    /// A scatter of points.
    #[must_use]
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            mark: Mark::Points,
        }
    }
    /// A reference curve (a claim's prediction, a bound).
    #[must_use]
    pub fn reference(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            mark: Mark::Reference,
        }
    }
}

/// A chart: title, axes and series.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title drawn on top.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// Plot log10(x) instead of x.
    pub log_x: bool,
    /// Plot log10(y) instead of y.
    pub log_y: bool,
    /// The series.
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl Chart {
    fn transformed(&self) -> Vec<Vec<(f64, f64)>> {
        let tx = |v: f64, log: bool| if log { v.log10() } else { v };
        self.series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .map(|&(x, y)| (tx(x, self.log_x), tx(y, self.log_y)))
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect()
            })
            .collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing failed: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let data = self.transformed();
        let all: Vec<(f64, f64)> = data.iter().flatten().copied().collect();
        if all.is_empty() {
            return Err(anyhow!("chart {:?} has no finite points", self.title));
        }
        let (mut x0, mut x1, mut y0, mut y1) = all.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        );
        let pad = |lo: &mut f64, hi: &mut f64| {
            let span = (*hi - *lo).abs().max(1e-12 * (1.0 + lo.abs()));
            *lo -= 0.05 * span;
            *hi += 0.05 * span;
        };
        pad(&mut x0, &mut x1);
        pad(&mut y0, &mut y1);
        let label = |l: &str, log: bool| {
            if log {
                format!("log10 {l}")
            } else {
                l.to_string()
            }
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(label(&self.x_label, self.log_x))
            .y_desc(label(&self.y_label, self.log_y))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (i, (s, pts)) in self.series.iter().zip(&data).enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            match s.mark {
                Mark::Line => {
                    chart
                        .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                        .map_err(err)?
                        .label(&s.name)
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                }
                Mark::Points => {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(err)?
                        .label(&s.name)
                        .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
                }
                Mark::Reference => {
                    chart
                        .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(1)))
                        .map_err(err)?
                        .label(&s.name)
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1))
                        });
                }
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(())
    }

    /// Writes `<dir>/<stem>.png` and `<dir>/<stem>.svg` and returns the figure record (paths
    /// relative to `dir`'s parent report directory are `figures/<stem>.*`).
    ///
    /// # Errors
    /// When the chart has no finite point or a file cannot be written.
    pub fn save(&self, dir: &Path, stem: &str, caption: &str) -> Result<Figure> {
        register_font();
        std::fs::create_dir_all(dir)?;
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        {
            let root = SVGBackend::new(&svg, (900, 560)).into_drawing_area();
            self.draw(&root)?;
        }
        {
            let root = BitMapBackend::new(&png, (900, 560)).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(Figure {
            caption: caption.to_string(),
            png: format!("figures/{stem}.png"),
            svg: format!("figures/{stem}.svg"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_with_text() {
        let dir = std::env::temp_dir().join(format!("claimlab-plot-{}", std::process::id()));
        let chart = Chart {
            title: "test chart".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            series: vec![
                Series::line("a", vec![(1.0, 1.0), (2.0, 10.0), (3.0, 100.0)]),
                Series::points("b", vec![(1.5, 3.0), (2.5, 0.0)]),
            ],
        };
        let fig = chart.save(&dir, "t", "caption").unwrap();
        let png = std::fs::metadata(dir.join("t.png")).unwrap().len();
        let svg = std::fs::read_to_string(dir.join("t.svg")).unwrap();
        assert!(png > 1000, "png too small: {png}");
        assert!(svg.contains("test chart"));
        assert_eq!(fig.png, "figures/t.png");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_chart_is_an_error() {
        let chart = Chart {
            title: "empty".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: false,
            series: vec![Series::line("a", vec![(0.0, 1.0)])],
        };
        let dir = std::env::temp_dir().join(format!("claimlab-plot-e-{}", std::process::id()));
        assert!(chart.save(&dir, "e", "c").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
