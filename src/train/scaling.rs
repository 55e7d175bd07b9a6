//! Dynamic loss scaling for f16 compute: the loss is multiplied by a scale before the backward pass
//! so that small gradients survive f16's narrow range, and the gradients are divided by it before
//! the update. A step whose gradients overflow is skipped and the scale halved; after
//! [`GROWTH_INTERVAL`] good steps in a row the scale doubles (as PyTorch's GradScaler).

use serde::{Deserialize, Serialize};

/// The starting scale, 2^16.
pub const INITIAL: f64 = 65536.0;
/// Good steps between doublings.
pub const GROWTH_INTERVAL: u64 = 1000;
/// The largest scale, 2^24.
const MAX: f64 = 16_777_216.0;

/// The scaler's state (checkpointed with the trainer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// Whether scaling is on (f16 runs).
    pub enabled: bool,
    /// The current scale (1 when off).
    pub scale: f64,
    /// Good steps since the last change of scale.
    pub good_steps: u64,
    /// Steps skipped because their gradients overflowed.
    pub skipped: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale::new(false)
    }
}

impl LossScale {
    /// A scaler, on or off.
    pub fn new(enabled: bool) -> Self {
        LossScale {
            enabled,
            scale: if enabled { INITIAL } else { 1.0 },
            good_steps: 0,
            skipped: 0,
        }
    }

    /// Records a step whose scaled gradients were finite or not; returns whether to apply it.
    pub fn update(&mut self, finite: bool) -> bool {
        if !self.enabled {
            return true;
        }
        if !finite {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
            self.skipped += 1;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps >= GROWTH_INTERVAL {
            self.scale = (self.scale * 2.0).min(MAX);
            self.good_steps = 0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_scales_by_one_and_applies_every_step() {
        let mut s = LossScale::new(false);
        assert_eq!(s.scale, 1.0);
        assert!(s.update(false));
        assert_eq!((s.scale, s.skipped), (1.0, 0));
    }

    #[test]
    fn overflow_halves_and_skips_and_good_steps_grow() {
        let mut s = LossScale::new(true);
        assert!(!s.update(false));
        assert_eq!((s.scale, s.skipped), (INITIAL / 2.0, 1));
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, INITIAL / 2.0);
        assert!(s.update(true));
        assert_eq!((s.scale, s.good_steps), (INITIAL, 0));
        // Never below 1.
        for _ in 0..40 {
            s.update(false);
        }
        assert_eq!(s.scale, 1.0);
    }
}
