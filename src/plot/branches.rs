//! Trunks and cooldown branches of a branched sweep: validation loss against tokens, each trunk
//! (constant LR) as a thin line, each branch's cooldown as a thick line from its fork, its final
//! loss marked: the (N, D) points the laws are fitted on.

use super::canvas::{self, chart, layout, DrawResult, Figure, Glyph, Legend, Look, Points, Shape};
use super::source::Source;
use super::style::{self, size, Axis, Units, INK};
use crate::table::{numbers, read_frame, texts};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// One trunk with its branches.
struct Family {
    n: f64,
    trunk: Points,
    /// Each branch's cooldown segment (from the fork on), ending at its final loss.
    cooldowns: Vec<Points>,
}

/// Prepared data of the branches figure.
pub struct Branches {
    title: String,
    /// By N, ascending.
    families: Vec<Family>,
    floor: Option<f64>,
}

/// Each run's curve as (tokens, validation loss), by id.
fn curves(path: &Path) -> Result<HashMap<String, Points>, String> {
    let df = read_frame(path).map_err(|e| e.to_string())?;
    let ids = texts(&df, "id", path).map_err(|e| e.to_string())?;
    let tokens = numbers(&df, "tokens", path).map_err(|e| e.to_string())?;
    let loss = numbers(&df, "val_loss", path).map_err(|e| e.to_string())?;
    let mut by_id: HashMap<String, Points> = HashMap::new();
    for i in 0..df.height() {
        if let (Some(id), Some(t), Some(l)) = (&ids[i], tokens[i], loss[i]) {
            by_id.entry(id.clone()).or_default().push((t, l));
        }
    }
    for pts in by_id.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(by_id)
}

/// Builds the figure, or says why it cannot be drawn; `None` for a sweep without branches (or a
/// table), where the figure does not apply.
pub fn build(src: &Source) -> Result<Option<Branches>, String> {
    let runs_path = src.dir.join("runs.parquet");
    let Ok(runs) = read_frame(&runs_path) else {
        return Ok(None);
    };
    let Ok(role) = texts(&runs, "role", &runs_path) else {
        return Ok(None);
    };
    if !role.iter().any(|r| r.as_deref() == Some("branch")) {
        return Ok(None);
    }
    let column = |name: &str| texts(&runs, name, &runs_path).map_err(|e| e.to_string());
    let (ids, trunk_of, status) = (column("id")?, column("trunk")?, column("status")?);
    let n = numbers(&runs, "params_nonembedding", &runs_path).map_err(|e| e.to_string())?;
    let fork = numbers(&runs, "branch_tokens", &runs_path).map_err(|e| e.to_string())?;
    let floor = numbers(&runs, "entropy_floor", &runs_path)
        .ok()
        .and_then(|f| f.into_iter().flatten().next());
    let by_id = curves(&src.dir.join("curves.parquet"))?;
    let mut families: HashMap<String, Family> = HashMap::new();
    for i in 0..runs.height() {
        let (Some(id), Some(ni)) = (&ids[i], n[i]) else {
            continue;
        };
        let curve = by_id.get(id).cloned().unwrap_or_default();
        match (role[i].as_deref(), &trunk_of[i]) {
            (Some("trunk"), _) => {
                let f = families.entry(id.clone()).or_insert(Family {
                    n: ni,
                    trunk: Vec::new(),
                    cooldowns: Vec::new(),
                });
                f.trunk = curve;
            }
            (Some("branch"), Some(t)) if status[i].as_deref() == Some("done") => {
                let from = fork[i].unwrap_or(0.0);
                let f = families.entry(t.clone()).or_insert(Family {
                    n: ni,
                    trunk: Vec::new(),
                    cooldowns: Vec::new(),
                });
                // The cooldown segment, starting from the trunk's last evaluation before the fork.
                let start = curve.iter().rposition(|p| p.0 <= from).unwrap_or(0);
                f.cooldowns.push(curve[start..].to_vec());
            }
            _ => {}
        }
    }
    let mut families: Vec<Family> = families
        .into_values()
        .filter(|f| !f.cooldowns.is_empty())
        .collect();
    families.sort_by(|a, b| a.n.total_cmp(&b.n));
    if families.is_empty() {
        return Err("no cooldown branch has finished yet".into());
    }
    Ok(Some(Branches {
        title: format!("{}: trunks and cooldown branches", src.name),
        families,
        floor,
    }))
}

impl Figure for Branches {
    fn size(&self) -> (u32, u32) {
        size::SINGLE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (plot, side) = layout(root, &self.title)?;
        let all = || {
            self.families
                .iter()
                .flat_map(|f| f.trunk.iter().chain(f.cooldowns.iter().flatten()))
        };
        let x = Axis::covering("tokens", all().map(|p| p.0), true, Units::Sci);
        let y = Axis::covering(
            "validation loss (nats/token)",
            all().map(|p| p.1).chain(self.floor),
            true,
            Units::Plain,
        );
        let mut ch = chart(&plot, "", &x, &y)?;
        let mut legend = Legend::default();
        legend.add("N (non-embedding)", Glyph::Heading);
        let k = self.families.len();
        for (i, f) in self.families.iter().enumerate() {
            let color = style::sequential(i, k);
            canvas::line(&mut ch, &x, &y, &f.trunk, Look::dashed(color, 1))?;
            for c in &f.cooldowns {
                canvas::line(&mut ch, &x, &y, c, Look::solid(color, 2))?;
            }
            let ends: Points = f
                .cooldowns
                .iter()
                .filter_map(|c| c.last().copied())
                .collect();
            canvas::markers(&mut ch, &x, &y, &ends, Shape::Circle, Look::solid(color, 4))?;
            legend.add(
                match f.cooldowns.len() {
                    1 => format!("N = {} (1 branch)", style::si_label(f.n)),
                    b => format!("N = {} ({b} branches)", style::si_label(f.n)),
                },
                Glyph::Line(Look::solid(color, 2)),
            );
        }
        legend.add("trunk (constant LR)", Glyph::Line(Look::dashed(INK, 1)));
        legend.add("cooldown branch", Glyph::Line(Look::solid(INK, 2)));
        legend.add(
            "branch's final loss",
            Glyph::Marker(Shape::Circle, Look::solid(INK, 4)),
        );
        if let Some(fl) = self.floor {
            let look = Look::dashed(INK, 1);
            canvas::line(&mut ch, &x, &y, &[(x.lo, fl), (x.hi, fl)], look)?;
            legend.add(format!("entropy floor {fl:.3}"), Glyph::Line(look));
        }
        legend.draw(&side)
    }
}
