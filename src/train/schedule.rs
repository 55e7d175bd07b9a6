//! Learning-rate schedules: warmup then cosine, warmup-stable-decay, or constant.

use crate::config::{CooldownShape, Schedule, TrainConfig};

/// Warmup steps of a run of `total` steps: `warmup_steps` when set, else the `warmup` fraction.
fn warmup_steps(cfg: &TrainConfig, total: f64) -> f64 {
    cfg.warmup_steps
        .map_or((cfg.warmup * total).round(), |w| w as f64)
}

/// The step at which warmup ends (the rate reaches its peak) in a run of `total` steps.
pub fn warmup_end(cfg: &TrainConfig, total: u64) -> u64 {
    warmup_steps(cfg, total as f64) as u64
}

/// First step of the WSD cooldown of a run of `total` steps: a branch's fork step, else the last
/// `cooldown` fraction of the run.
pub fn cooldown_start(cfg: &TrainConfig, total: u64) -> u64 {
    match &cfg.branch {
        Some(b) => b.step,
        None => total - (cfg.cooldown * total as f64).round() as u64,
    }
}

/// Learning rate at `step` (0-based) of `total` steps.
pub fn lr_at(cfg: &TrainConfig, step: u64, total: u64) -> f64 {
    let peak = cfg.lr;
    let floor = cfg.lr * cfg.min_lr_ratio;
    let start = cooldown_start(cfg, total.max(1)) as f64;
    let total = total.max(1) as f64;
    let s = step as f64;
    let warmup = warmup_steps(cfg, total);
    if s < warmup {
        return peak * (s + 1.0) / warmup;
    }
    match cfg.schedule {
        Schedule::Constant => peak,
        Schedule::Cosine => {
            let span = (total - warmup).max(1.0);
            let p = ((s - warmup) / span).clamp(0.0, 1.0);
            floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * p).cos())
        }
        Schedule::Wsd => {
            let cooldown = total - start;
            if s < start || cooldown == 0.0 {
                peak
            } else {
                let p = ((s - start + 1.0) / cooldown).clamp(0.0, 1.0);
                let shape = match cfg.cooldown_shape {
                    CooldownShape::Linear => 1.0 - p,
                    CooldownShape::Sqrt => 1.0 - p.sqrt(),
                };
                floor + (peak - floor) * shape
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(schedule: Schedule) -> TrainConfig {
        serde_yaml::from_str::<TrainConfig>(&format!(
            "tokens: 1\nlr: 1.0\nmin_lr_ratio: 0.1\nwarmup: 0.1\ncooldown: 0.2\nschedule: {}",
            serde_yaml::to_string(&schedule).unwrap().trim()
        ))
        .unwrap()
    }

    #[test]
    fn cosine_warms_up_then_decays_to_floor() {
        let c = cfg(Schedule::Cosine);
        assert!((lr_at(&c, 0, 100) - 0.1).abs() < 1e-12);
        assert!((lr_at(&c, 9, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(&c, 10, 100) - 1.0).abs() < 1e-12);
        // Halfway through the decay: floor + (peak - floor)/2 = 0.55.
        assert!((lr_at(&c, 55, 100) - 0.55).abs() < 1e-12);
        assert!((lr_at(&c, 100, 100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn wsd_is_flat_then_cools_down() {
        let c = cfg(Schedule::Wsd);
        assert_eq!(lr_at(&c, 50, 100), 1.0);
        assert_eq!(lr_at(&c, 79, 100), 1.0);
        // Last step: progress 1 -> floor.
        assert!((lr_at(&c, 99, 100) - 0.1).abs() < 1e-12);
        // 1 - sqrt shape: a quarter of the way, 1 - 0.5 = 0.5 of the range.
        assert!((lr_at(&c, 84, 100) - (0.1 + 0.9 * 0.5)).abs() < 1e-12);
    }

    #[test]
    fn a_branch_follows_its_trunk_then_cools_down_from_its_fork_step() {
        // Trunk: constant after a 10-step warmup, whatever its length.
        let mut trunk = cfg(Schedule::Constant);
        trunk.warmup_steps = Some(10);
        // Branch of 100 steps forking at step 60: a 40-step cooldown, not the 20% default.
        let mut branch = cfg(Schedule::Wsd);
        branch.warmup_steps = Some(10);
        branch.branch = Some(crate::config::BranchFrom {
            trunk: "t".into(),
            step: 60,
        });
        for s in 0..60 {
            assert_eq!(lr_at(&trunk, s, 300), lr_at(&branch, s, 100), "step {s}");
        }
        assert!((lr_at(&branch, 4, 100) - 0.5).abs() < 1e-12);
        // A quarter of the way (10 of 40 steps): 1 - sqrt(0.25) = 0.5 of the range.
        assert!((lr_at(&branch, 69, 100) - 0.55).abs() < 1e-12);
        assert!((lr_at(&branch, 99, 100) - 0.1).abs() < 1e-12);
        // A WSD run whose cooldown fraction lands on the same step has the same schedule.
        let mut wsd = cfg(Schedule::Wsd);
        wsd.warmup_steps = Some(10);
        wsd.cooldown = 0.4;
        assert_eq!(cooldown_start(&wsd, 100), 60);
        for s in 0..100 {
            assert_eq!(lr_at(&wsd, s, 100), lr_at(&branch, s, 100), "step {s}");
        }
    }
}
