//! The look shared by every figure: the embedded font, the colour-blind-safe palettes, sizes, and
//! axis ticks and labels that read well on log scales.

use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
use plotters::style::{register_font, FontStyle, RGBColor};
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/LICENSE-DejaVu.txt), compiled into the
/// binary so text renders on a machine without system fonts.
pub static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name every figure uses.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font under [`FAMILY`] (once per process).
pub fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            // The bytes are compiled in and parsed by a test; this cannot fail at run time.
            unreachable!("embedded DejaVu Sans does not parse");
        }
    });
}

/// Okabe & Ito's palette for categories (safe under the common colour-vision deficiencies), black
/// last so it stays free for fits and references.
pub const CATEGORICAL: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(120, 120, 120), // grey
];

/// The `i`-th categorical colour (cycling).
pub fn category(i: usize) -> RGBColor {
    CATEGORICAL[i % CATEGORICAL.len()]
}

/// A colour on viridis for position `i` of `n` ordered values (e.g. model sizes), from dark to
/// light; the yellow end is cut so lines stay visible on white.
pub fn sequential(i: usize, n: usize) -> RGBColor {
    let t = if n <= 1 {
        0.0
    } else {
        i as f64 / (n - 1) as f64
    };
    ViridisRGB.get_color_normalized(0.88 * t, 0.0, 1.0)
}

/// Dark grey for reference lines and annotations.
pub const INK: RGBColor = RGBColor(40, 40, 40);

/// Figure sizes in pixels.
pub mod size {
    /// One panel with a legend column.
    pub const SINGLE: (u32, u32) = (1100, 680);
    /// A row of two or three panels with a legend column.
    pub const ROW: (u32, u32) = (1680, 620);
    /// Width of the legend column.
    pub const LEGEND: u32 = 290;
}

/// How an axis prints its tick values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Units {
    /// FLOPs and other wide-ranging quantities: 1e12, 3e12.
    Sci,
    /// Counts (parameters, tokens): 10k, 2.5M, 1B.
    Si,
    /// Plain numbers (loss, ratios) with as many decimals as the tick step needs.
    Plain,
}

/// One axis: its label, its data range, whether it is logarithmic, and how to print ticks. Data are
/// drawn in transformed coordinates (log10 for log axes), so every chart has the same type.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Label with units.
    pub label: String,
    /// Lowest value shown (data units).
    pub lo: f64,
    /// Highest value shown (data units).
    pub hi: f64,
    /// Logarithmic axis.
    pub log: bool,
    /// Tick label style.
    pub units: Units,
}

impl Axis {
    /// An axis covering `values` with a margin (5% of the span; on log axes, of the decades).
    pub fn covering(
        label: &str,
        values: impl IntoIterator<Item = f64>,
        log: bool,
        units: Units,
    ) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        let t = |v: f64| if log { v.log10() } else { v };
        let u = |v: f64| if log { 10f64.powf(v) } else { v };
        let (tl, th) = (t(lo), t(hi));
        let span = (th - tl).max(if log { 0.2 } else { 1e-9 * tl.abs().max(1.0) });
        let mid = 0.5 * (tl + th);
        let half = 0.5 * span * 1.1;
        Axis {
            label: label.into(),
            lo: u(mid - half),
            hi: u(mid + half),
            log,
            units,
        }
    }

    /// A linear axis from 0 to 1 (a proportion), with a small margin.
    pub fn proportion(label: &str) -> Axis {
        Axis {
            label: label.into(),
            lo: -0.03,
            hi: 1.03,
            log: false,
            units: Units::Plain,
        }
    }

    /// Data value to drawing coordinate.
    pub fn to(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    }

    /// Drawing coordinate to data value.
    pub fn from(&self, t: f64) -> f64 {
        if self.log {
            10f64.powf(t)
        } else {
            t
        }
    }

    /// The drawing range.
    pub fn range(&self) -> std::ops::Range<f64> {
        self.to(self.lo)..self.to(self.hi)
    }

    /// Whether a data value lies inside the axis.
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && v >= self.lo && v <= self.hi
    }

    /// Tick positions in drawing coordinates.
    pub fn ticks(&self) -> Vec<f64> {
        let values = if self.log {
            log_ticks(self.lo, self.hi)
        } else {
            linear_ticks(self.lo, self.hi)
        };
        values.into_iter().map(|v| self.to(v)).collect()
    }

    /// The label of the tick at drawing coordinate `t`.
    pub fn tick_label(&self, t: f64) -> String {
        let v = self.from(t);
        match self.units {
            Units::Sci => sci_label(v),
            Units::Si => si_label(v),
            Units::Plain if self.log => sci_label(v),
            Units::Plain => plain_label(v, self.plain_decimals()),
        }
    }

    fn plain_decimals(&self) -> usize {
        let ticks = if self.log {
            log_ticks(self.lo, self.hi)
        } else {
            linear_ticks(self.lo, self.hi)
        };
        let step = ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(f64::INFINITY, f64::min);
        if !step.is_finite() || step >= 1.0 {
            0
        } else {
            (-step.log10()).ceil().clamp(0.0, 6.0) as usize
        }
    }
}

/// "Nice" linear ticks (steps of 1, 2 or 5 x 10^k), 4 to 9 of them.
pub fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| (hi - lo) / s <= 8.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Log ticks: whole decades (every k-th if many) over wide ranges, 1-2-5 within decades over
/// narrower ones, finer steps within a single decade; never fewer than two ticks.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(hi > lo && lo > 0.0) {
        return vec![lo];
    }
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |mantissas: &[f64]| -> Vec<f64> {
        (d0..=d1)
            .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let decades = hi.log10() - lo.log10();
    if decades >= 3.5 {
        let every = ((decades / 8.0).ceil() as i32).max(1);
        let t: Vec<f64> = within(&[1.0])
            .into_iter()
            .filter(|v| (v.log10().round() as i32).rem_euclid(every) == 0)
            .collect();
        if t.len() >= 2 {
            return t;
        }
    }
    for mantissas in [
        &[1.0, 3.0][..],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
        &[
            1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0,
        ],
    ] {
        let t = within(mantissas);
        if t.len() >= 4 || (t.len() >= 2 && decades >= 1.0) {
            return t;
        }
    }
    linear_ticks(lo, hi)
}

/// 1e12, 3e12, 2.5e-3 (numbers between 0.01 and 1000 print plainly).
pub fn sci_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (0.01..1000.0).contains(&a) {
        return trim(format!("{v:.2}"));
    }
    let mut e = a.log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    // 9.97e10 prints as 1e11, not 10e10.
    if (m.abs() * 10.0).round() >= 100.0 {
        e += 1;
        m /= 10.0;
    }
    format!("{}e{e}", trim(format!("{m:.1}")))
}

/// 850, 10k, 2.5M, 1.2B, 3T.
pub fn si_label(v: f64) -> String {
    let a = v.abs();
    let (div, suffix) = match a {
        a if a >= 1e12 => (1e12, "T"),
        a if a >= 1e9 => (1e9, "B"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    if div == 1.0 && a < 1.0 {
        return trim(format!("{v:.3}"));
    }
    format!("{}{suffix}", trim(format!("{:.1}", v / div)))
}

fn plain_label(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_compact() {
        assert_eq!(sci_label(1e12), "1e12");
        assert_eq!(sci_label(3e12), "3e12");
        assert_eq!(sci_label(2.5e-3), "2.5e-3");
        assert_eq!(sci_label(0.5), "0.5");
        assert_eq!(sci_label(9.98e10), "1e11");
        assert_eq!(sci_label(-3e-7), "-3e-7");
        assert_eq!(si_label(10_000.0), "10k");
        assert_eq!(si_label(2.5e6), "2.5M");
        assert_eq!(si_label(1.2e9), "1.2B");
        assert_eq!(si_label(850.0), "850");
    }

    #[test]
    fn log_ticks_adapt_to_the_span() {
        // Eight decades: every decade.
        let t = log_ticks(1e10, 1e18);
        assert_eq!(t.len(), 9);
        assert!((t[0] - 1e10).abs() < 1.0);
        // Twenty decades: every third decade at most 8 ticks.
        assert!(log_ticks(1e0, 1e20).len() <= 8);
        // Less than a decade: 1-2-5 or finer, at least 4 ticks, all inside.
        let t = log_ticks(2.0, 4.5);
        assert!(t.len() >= 4, "{t:?}");
        assert!(t.iter().all(|v| (2.0..=4.5).contains(v)));
        // Ticks increase.
        assert!(t.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn linear_ticks_are_nice() {
        let t = linear_ticks(0.0, 1.0);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        let t = linear_ticks(2.13, 2.87);
        assert!(t.len() >= 4 && t.len() <= 9, "{t:?}");
    }

    #[test]
    fn axis_covers_data_with_margin() {
        let a = Axis::covering("x", [1e10, 1e12], true, Units::Sci);
        assert!(a.lo < 1e10 && a.hi > 1e12);
        assert!(a.contains(1e11) && !a.contains(1e13));
        assert!((a.from(a.to(3e11)) / 3e11 - 1.0).abs() < 1e-12);
        // Degenerate data still gives a usable range.
        let a = Axis::covering("x", [5.0], false, Units::Plain);
        assert!(a.hi > a.lo);
    }
}
