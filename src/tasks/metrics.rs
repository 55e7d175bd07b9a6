//! Metrics of task outputs, as pure functions: exact match, token edit distance, Brier score, and the
//! Wilson interval of a binomial proportion.

/// Whether the generated tokens up to and including the first EOS equal the answer.
pub fn exact_match(generated: &[u32], answer: &[u32], eos: u32) -> bool {
    truncate_at(generated, eos) == answer
}

/// `tokens` up to and including the first `eos` (all of them if there is none).
pub fn truncate_at(tokens: &[u32], eos: u32) -> &[u32] {
    match tokens.iter().position(|&t| t == eos) {
        Some(i) => &tokens[..=i],
        None => tokens,
    }
}

/// Levenshtein distance between two token sequences (insertions, deletions, substitutions).
pub fn edit_distance(a: &[u32], b: &[u32]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Brier score of a distribution over a choice set: sum over choices of (p - 1[correct])^2.
pub fn brier(probs: &[f64], correct: usize) -> f64 {
    probs
        .iter()
        .enumerate()
        .map(|(i, &p)| (p - f64::from(u8::from(i == correct))).powi(2))
        .sum()
}

/// The Wilson score interval of k successes in n trials at normal quantile z (1.96 for 95%).
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    fit::emergence::wilson(k as f64 / n.max(1) as f64, n, z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_stops_at_eos() {
        assert!(exact_match(&[1, 2, 9, 5, 5], &[1, 2, 9], 9));
        assert!(!exact_match(&[1, 3, 9], &[1, 2, 9], 9));
        assert!(!exact_match(&[1, 2], &[1, 2, 9], 9));
    }

    #[test]
    fn edit_distances_by_hand() {
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3]), 1); // one deletion
        assert_eq!(edit_distance(&[1, 2, 3], &[3, 2, 1]), 2); // two substitutions
        assert_eq!(edit_distance(&[], &[4, 5]), 2);
        // kitten -> sitting = 3.
        let k: Vec<u32> = "kitten".bytes().map(u32::from).collect();
        let s: Vec<u32> = "sitting".bytes().map(u32::from).collect();
        assert_eq!(edit_distance(&k, &s), 3);
    }

    #[test]
    fn brier_by_hand() {
        // (0.7 - 1)^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01.
        assert!((brier(&[0.7, 0.2, 0.1], 0) - 0.14).abs() < 1e-12);
        assert_eq!(brier(&[0.0, 1.0], 1), 0.0);
    }

    #[test]
    fn wilson_by_hand() {
        // 8 of 10 at z = 1.96: centre (0.8 + 0.19208)/1.38416 = 0.71681, half 0.22658.
        let (lo, hi) = wilson(8, 10, 1.96);
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 50, 1.96);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.0714).abs() < 1e-3, "{hi}");
    }
}
