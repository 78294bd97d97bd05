//! The kernels' arithmetic in plain Rust: the path for CPUs without AVX2, and the
//! reference the SIMD paths are tested against.

use super::ActivationBlock;
use super::WeightBlock;
use super::interleaved::{COLUMNS, Group};

/// The sums of `N` activation rows with each of a group's eight columns, over a row of
/// groups: each column's blocks taken back out and multiplied one by one.
#[cfg_attr(
    all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c",
        not(test)
    ),
    allow(dead_code)
)]
pub(super) fn tile<G: Group, const N: usize>(
    groups: &[G],
    rows: &[&[ActivationBlock]; N],
) -> [[f32; COLUMNS]; N] {
    let mut sums = [[0f32; COLUMNS]; N];
    for (index, group) in groups.iter().enumerate() {
        for c in 0..COLUMNS {
            let column = group.column(c);
            for (sum, row) in sums.iter_mut().zip(rows) {
                sum[c] += column.dot(&row[index]);
            }
        }
    }
    sums
}
