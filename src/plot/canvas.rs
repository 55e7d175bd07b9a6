//! Drawing primitives shared by the figures: a chart with readable axes, clipped lines, bands and
//! markers in data units, a legend column beside the panels (so it never covers data), and rendering
//! one figure to PNG and SVG atomically.

use super::raster::Png;
use super::style::{self, Axis, FAMILY, INK};
use crate::error::{LabError, LabResult};
use crate::results::write_atomic;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::fmt::Display;
use std::path::{Path, PathBuf};

/// A linear range in drawing coordinates (log10 for log axes) with hand-picked ticks.
#[derive(Debug, Clone)]
pub struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    /// The drawing range and ticks of an axis.
    pub fn of(axis: &Axis) -> Ticked {
        let r = axis.range();
        Ticked {
            lo: r.start,
            hi: r.end,
            ticks: axis.ticks(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        let t = t.clamp(-10.0, 10.0);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The coordinate system of every chart.
pub type Coords = Cartesian2d<Ticked, Ticked>;

/// A chart on one panel.
pub type Chart<'a, DB> = ChartContext<'a, DB, Coords>;

/// Result of a drawing step; the message says what failed.
pub type DrawResult<T = ()> = Result<T, String>;

/// Points of a line or scatter, in data units.
pub type Points = Vec<(f64, f64)>;

/// Turns a plotters error into a message.
pub trait OrMessage<T> {
    /// Maps the error to its text.
    fn msg(self) -> DrawResult<T>;
}

impl<T, E: Display> OrMessage<T> for Result<T, E> {
    fn msg(self) -> DrawResult<T> {
        self.map_err(|e| e.to_string())
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Raster, for reports and quick looks.
    Png,
    /// Vector, for papers.
    Svg,
}

impl Format {
    /// Parses "png" or "svg".
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }

    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Something that draws itself onto a canvas of its preferred size.
pub trait Figure {
    /// Canvas size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws everything onto `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Renders `fig` to `<stem>.<ext>` for every format; each file is written whole or not at all.
pub fn render<F: Figure>(fig: &F, stem: &Path, formats: &[Format]) -> LabResult<Vec<PathBuf>> {
    style::register_embedded_font();
    let size = fig.size();
    let mut written = Vec::new();
    let fail = |path: &Path, e: String| {
        LabError::Other(anyhow::anyhow!("drawing {}: {e}", path.display()))
    };
    for &format in formats {
        let path = stem.with_extension(format.ext());
        match format {
            Format::Png => {
                // The encoder picks the format from the extension, so the partial file keeps it.
                let name = path.file_name().map(|n| n.to_string_lossy().to_string());
                let partial = path.with_file_name(format!(".partial-{}", name.unwrap_or_default()));
                let result = (|| {
                    let root = Png(BitMapBackend::new(&partial, size)).into_drawing_area();
                    root.fill(&WHITE).msg()?;
                    fig.draw(&root)?;
                    root.present().msg()
                })();
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&partial);
                    return Err(fail(&path, e));
                }
                std::fs::rename(&partial, &path)?;
            }
            Format::Svg => {
                let mut svg = String::new();
                {
                    let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                    root.fill(&WHITE).msg().map_err(|e| fail(&path, e))?;
                    fig.draw(&root).map_err(|e| fail(&path, e))?;
                    root.present().msg().map_err(|e| fail(&path, e))?;
                }
                write_atomic(&path, svg.as_bytes())?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

/// Splits `root` into a title strip, the panel area and the legend column.
pub fn layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> DrawResult<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>)> {
    let body = root.titled(title, (FAMILY, 22).into_font()).msg()?;
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(style::size::LEGEND)))
}

/// The size of a figure of `n` panels in rows of up to three, each as wide as in a full row,
/// beside the legend column.
pub fn grid_size(n: usize) -> (u32, u32) {
    let panel = (style::size::ROW.0 - style::size::LEGEND) / 3;
    (
        style::size::LEGEND + n.clamp(1, 3) as u32 * panel,
        80 + n.div_ceil(3) as u32 * 520,
    )
}

/// `plot` split into the cells of a grid of `n` panels in rows of up to three.
pub fn grid<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    n: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    plot.split_evenly((n.div_ceil(3), n.clamp(1, 3)))
}

/// A chart on `area` with labelled axes, readable ticks and a light grid.
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    subtitle: &str,
    x: &Axis,
    y: &Axis,
) -> DrawResult<Chart<'a, DB>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(54)
        .y_label_area_size(74);
    if !subtitle.is_empty() {
        builder.caption(subtitle, (FAMILY, 17).into_font());
    }
    let mut chart = builder
        .build_cartesian_2d(Ticked::of(x), Ticked::of(y))
        .msg()?;
    let xf = |v: &f64| x.tick_label(*v);
    let yf = |v: &f64| y.tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(x.label.as_str())
        .y_desc(y.label.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .bold_line_style(RGBColor(228, 228, 228))
        .light_line_style(TRANSPARENT)
        .draw()
        .msg()?;
    Ok(chart)
}

/// Marker shapes, so series stay distinguishable without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Circle.
    Circle,
    /// Square.
    Square,
    /// Triangle.
    Triangle,
    /// Diamond.
    Diamond,
    /// Cross.
    Cross,
}

impl Shape {
    /// The `i`-th shape (cycling).
    pub fn nth(i: usize) -> Shape {
        [
            Shape::Circle,
            Shape::Square,
            Shape::Triangle,
            Shape::Diamond,
            Shape::Cross,
        ][i % 5]
    }
}

/// How a series looks.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Colour.
    pub color: RGBColor,
    /// Line width or marker size in pixels.
    pub size: u32,
    /// Dashed line / hollow marker.
    pub dashed: bool,
}

impl Look {
    /// A solid look.
    pub const fn solid(color: RGBColor, size: u32) -> Look {
        Look {
            color,
            size,
            dashed: false,
        }
    }

    /// A dashed (line) or hollow (marker) look.
    pub const fn dashed(color: RGBColor, size: u32) -> Look {
        Look {
            color,
            size,
            dashed: true,
        }
    }
}

/// Clips the segment p-q to the box; `None` when it lies outside (Liang-Barsky).
fn clip_segment(
    p: (f64, f64),
    q: (f64, f64),
    xr: (f64, f64),
    yr: (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (den, num) in [
        (-dx, p.0 - xr.0),
        (dx, xr.1 - p.0),
        (-dy, p.1 - yr.0),
        (dy, yr.1 - p.1),
    ] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((
        (p.0 + t0 * dx, p.1 + t0 * dy),
        (p.0 + t1 * dx, p.1 + t1 * dy),
    ))
}

/// Splits a polyline (drawing coordinates) into the pieces inside the box.
fn clip_polyline(points: &[(f64, f64)], xr: (f64, f64), yr: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for w in points.windows(2) {
        match clip_segment(w[0], w[1], xr, yr) {
            Some((a, b)) => {
                if current.last() != Some(&a) {
                    if current.len() > 1 {
                        pieces.push(std::mem::take(&mut current));
                    }
                    current = vec![a];
                }
                current.push(b);
            }
            None => {
                if current.len() > 1 {
                    pieces.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if current.len() > 1 {
        pieces.push(current);
    }
    pieces
}

fn bounds(x: &Axis, y: &Axis) -> ((f64, f64), (f64, f64)) {
    let (xr, yr) = (x.range(), y.range());
    ((xr.start, xr.end), (yr.start, yr.end))
}

/// Draws a line through data points (non-finite points break it), clipped to the chart.
pub fn line<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Axis,
    y: &Axis,
    points: &[(f64, f64)],
    look: Look,
) -> DrawResult {
    let (xr, yr) = bounds(x, y);
    let style = look.color.stroke_width(look.size);
    for run in points.split(|(a, b)| {
        !(a.is_finite() && b.is_finite()) || (x.log && *a <= 0.0) || (y.log && *b <= 0.0)
    }) {
        let t: Vec<(f64, f64)> = run.iter().map(|&(a, b)| (x.to(a), y.to(b))).collect();
        for piece in clip_polyline(&t, xr, yr) {
            if look.dashed {
                chart
                    .draw_series(DashedLineSeries::new(piece, 9, 6, style))
                    .msg()?;
            } else {
                chart.draw_series(LineSeries::new(piece, style)).msg()?;
            }
        }
    }
    Ok(())
}

/// Shades the band between `lo` and `hi` along x (data units), clamped to the chart.
pub fn band<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Axis,
    y: &Axis,
    xs: &[f64],
    lo: &[f64],
    hi: &[f64],
    color: RGBColor,
) -> DrawResult {
    let (_, yr) = bounds(x, y);
    let keep: Vec<usize> = (0..xs.len())
        .filter(|&i| {
            x.contains(xs[i])
                && lo[i].is_finite()
                && hi[i].is_finite()
                && (!y.log || (lo[i] > 0.0 && hi[i] > 0.0))
        })
        .collect();
    if keep.len() < 2 {
        return Ok(());
    }
    let clamp = |v: f64| y.to(v).clamp(yr.0, yr.1);
    let mut poly: Vec<(f64, f64)> = keep.iter().map(|&i| (x.to(xs[i]), clamp(lo[i]))).collect();
    poly.extend(keep.iter().rev().map(|&i| (x.to(xs[i]), clamp(hi[i]))));
    chart
        .draw_series(std::iter::once(Polygon::new(
            poly,
            color.mix(0.18).filled(),
        )))
        .msg()?;
    Ok(())
}

/// Draws one marker per position on any drawing area (chart coordinates or legend pixels).
fn draw_shapes<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: &[CT::From],
    shape: Shape,
    look: Look,
) -> DrawResult
where
    CT::From: Clone,
{
    let s = look.size as i32;
    let style = if look.dashed {
        look.color.stroke_width(2)
    } else {
        look.color.filled()
    };
    for p in at {
        let e = EmptyElement::at(p.clone());
        match shape {
            Shape::Circle => area.draw(&(e + Circle::new((0, 0), s, style))),
            Shape::Square => area.draw(&(e + Rectangle::new([(-s, -s), (s, s)], style))),
            Shape::Triangle => {
                area.draw(&(e + Polygon::new(vec![(0, -s - 1), (s + 1, s), (-s - 1, s)], style)))
            }
            Shape::Diamond => area.draw(
                &(e + Polygon::new(
                    vec![(0, -s - 2), (s + 2, 0), (0, s + 2), (-s - 2, 0)],
                    style,
                )),
            ),
            Shape::Cross => area.draw(&(e + Cross::new((0, 0), s, look.color.stroke_width(2)))),
        }
        .msg()?;
    }
    Ok(())
}

/// Draws markers at data points inside the chart.
pub fn markers<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Axis,
    y: &Axis,
    points: &[(f64, f64)],
    shape: Shape,
    look: Look,
) -> DrawResult {
    let at: Vec<(f64, f64)> = points
        .iter()
        .filter(|(a, b)| x.contains(*a) && y.contains(*b))
        .map(|&(a, b)| (x.to(a), y.to(b)))
        .collect();
    draw_shapes(chart.plotting_area(), &at, shape, look)
}

/// Writes a short text at a data point (skipped outside the chart).
pub fn annotate<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Axis,
    y: &Axis,
    at: (f64, f64),
    text: &str,
) -> DrawResult {
    if x.contains(at.0) && y.contains(at.1) {
        chart
            .draw_series(std::iter::once(Text::new(
                text.to_string(),
                (x.to(at.0), y.to(at.1)),
                (FAMILY, 13).into_font().color(&INK),
            )))
            .msg()?;
    }
    Ok(())
}

/// What a legend entry shows beside its text.
#[derive(Debug, Clone, Copy)]
pub enum Glyph {
    /// A line sample.
    Line(Look),
    /// A marker sample.
    Marker(Shape, Look),
    /// A shaded band sample.
    Band(RGBColor),
    /// A heading (no sample).
    Heading,
}

/// The legend column: entries, then notes (wrapped) below them.
#[derive(Debug, Default)]
pub struct Legend {
    entries: Vec<(String, Glyph)>,
    notes: Vec<String>,
}

impl Legend {
    /// Adds an entry.
    pub fn add(&mut self, label: impl Into<String>, glyph: Glyph) {
        self.entries.push((label.into(), glyph));
    }

    /// Adds a note printed under the entries.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Draws the legend onto its column.
    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let font = (FAMILY, 14).into_font().color(&BLACK);
        let bold = (FAMILY, 15).into_font().color(&INK);
        let (w, _) = area.dim_in_pixel();
        let mut y = 40;
        for (label, glyph) in &self.entries {
            let mid = y + 8;
            match *glyph {
                Glyph::Line(look) => {
                    let style = look.color.stroke_width(look.size.max(2));
                    if look.dashed {
                        for k in 0..3 {
                            area.draw(&PathElement::new(
                                vec![(8 + 11 * k, mid), (15 + 11 * k, mid)],
                                style,
                            ))
                            .msg()?;
                        }
                    } else {
                        area.draw(&PathElement::new(vec![(8, mid), (38, mid)], style))
                            .msg()?;
                    }
                }
                Glyph::Marker(shape, look) => draw_shapes(area, &[(23, mid)], shape, look)?,
                Glyph::Band(color) => area
                    .draw(&Rectangle::new(
                        [(8, mid - 6), (38, mid + 6)],
                        color.mix(0.25).filled(),
                    ))
                    .msg()?,
                Glyph::Heading => {}
            }
            let (x, f) = match glyph {
                Glyph::Heading => (8, bold.clone()),
                _ => (46, font.clone()),
            };
            let chars = ((w as i32 - x - 6) / 8).max(8) as usize;
            for (k, l) in wrap(label, chars).into_iter().enumerate() {
                if k > 0 {
                    y += 17;
                }
                area.draw(&Text::new(l, (x, y), f.clone())).msg()?;
            }
            y += 22;
        }
        y += 10;
        let chars = ((w as i32 - 16) / 7).max(10) as usize;
        for note in &self.notes {
            for l in wrap(note, chars) {
                area.draw(&Text::new(l, (8, y), (FAMILY, 13).into_font().color(&INK)))
                    .msg()?;
                y += 17;
            }
            y += 6;
        }
        Ok(())
    }
}

/// Greedy word wrap at `width` characters.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_clipped_to_the_box() {
        let b = ((0.0, 1.0), (0.0, 1.0));
        let (a, c) = clip_segment((-1.0, 0.5), (2.0, 0.5), b.0, b.1).unwrap();
        assert_eq!((a, c), ((0.0, 0.5), (1.0, 0.5)));
        assert!(clip_segment((2.0, 2.0), (3.0, 3.0), b.0, b.1).is_none());
        // A polyline leaving and re-entering the box gives two pieces.
        let p = clip_polyline(&[(0.1, 0.1), (0.5, 2.0), (0.9, 0.1)], b.0, b.1);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn wrap_respects_width() {
        let l = wrap("approach 1 was not fitted because there were no curves", 20);
        assert!(l.iter().all(|s| s.len() <= 20), "{l:?}");
        assert_eq!(
            l.join(" "),
            "approach 1 was not fitted because there were no curves"
        );
    }
}
