//! Learning-rate schedules: warmup then cosine, warmup-stable-decay, or constant.

use crate::config::{CooldownShape, Schedule, TrainConfig};

/// Learning rate at `step` (0-based) of `total` steps.
pub fn lr_at(cfg: &TrainConfig, step: u64, total: u64) -> f64 {
    let peak = cfg.lr;
    let floor = cfg.lr * cfg.min_lr_ratio;
    let total = total.max(1) as f64;
    let s = step as f64;
    let warmup = (cfg.warmup * total).round();
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
            let cooldown = (cfg.cooldown * total).round();
            let start = total - cooldown;
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
}
