//! Weights repacked at load for products over a batch of rows.
//!
//! Eight output columns' blocks are interleaved four values at a time, so that one
//! 32-bit lane of a 256-bit register holds four weights of one column. One `vpdpbusd`
//! (two or three instructions on plain AVX2) then multiplies four weights of each of
//! eight columns by the same four activations, broadcast, and each block's scales are
//! applied once for the eight columns as one vector. Before, each column's block took a
//! multiply, a conversion, a scale and a horizontal sum of its own per activation row.
//! A repacked group is as large as the eight blocks it replaces, so single-stream decode
//! reads no more.

use half::f16;
use rayon::prelude::*;

use super::{
    ActivationBlock, BLOCK, Q4_1Block, Q8_0Block, WeightBlock, parse_blocks, quantize_rows, simd,
};

/// Output columns interleaved in one group: one per 32-bit lane of a 256-bit register.
pub(super) const COLUMNS: usize = 8;
/// Groups per parallel task (32 output columns): enough work to outweigh scheduling.
const GROUPS_PER_TASK: usize = 4;
/// Activation rows multiplied with each group of weights while it is in registers.
const TILE_ROWS: usize = 4;

/// One block of 32 values of eight output columns, in a kernel's layout.
pub trait Group: Copy + Send + Sync + 'static {
    type Block: WeightBlock;
    fn new(columns: &[Self::Block; COLUMNS]) -> Self;
    /// Column `c`'s block as the file stored it.
    fn column(&self, c: usize) -> Self::Block;
    /// The sums of `N` activation rows with each of the group's eight columns, over a
    /// row of groups.
    fn tile<const N: usize>(groups: &[Self], rows: &[&[ActivationBlock]; N])
    -> [[f32; COLUMNS]; N];
}

/// Q4_1 blocks of eight columns.
#[derive(Clone, Copy)]
pub struct Q4_1x8 {
    pub(super) d: [f16; COLUMNS],
    pub(super) m: [f16; COLUMNS],
    /// `qs[k]` holds, in bytes `4c..4c + 4`, bytes `4k..4k + 4` of column `c`'s block:
    /// values `4k + p` in the low nibbles and `16 + 4k + p` in the high ones, so that
    /// one load and two masks give the weights for activations `4k..` and `16 + 4k..`.
    pub(super) qs: [[u8; 4 * COLUMNS]; 4],
}

/// Q8_0 blocks of eight columns.
#[derive(Clone, Copy)]
pub struct Q8_0x8 {
    pub(super) d: [f16; COLUMNS],
    /// `qs[k]` holds, in bytes `4c..4c + 4`, values `4k..4k + 4` of column `c`.
    pub(super) qs: [[i8; 4 * COLUMNS]; 8],
}

/// `groups[k]`, lane `c`: bytes `4k..4k + 4` of `bytes(c)`.
fn lanes<'a, T: Copy + Default + 'a, const K: usize>(
    bytes: impl Fn(usize) -> &'a [T],
) -> [[T; 4 * COLUMNS]; K] {
    let mut groups = [[T::default(); 4 * COLUMNS]; K];
    for c in 0..COLUMNS {
        let column = bytes(c);
        for (k, group) in groups.iter_mut().enumerate() {
            group[4 * c..4 * c + 4].copy_from_slice(&column[4 * k..4 * k + 4]);
        }
    }
    groups
}

/// Column `c`'s bytes back from `groups`.
fn unlane<T: Copy + Default, const K: usize, const B: usize>(
    groups: &[[T; 4 * COLUMNS]; K],
    c: usize,
) -> [T; B] {
    let mut bytes = [T::default(); B];
    for (k, group) in groups.iter().enumerate() {
        bytes[4 * k..4 * k + 4].copy_from_slice(&group[4 * c..4 * c + 4]);
    }
    bytes
}

impl Group for Q4_1x8 {
    type Block = Q4_1Block;

    fn new(columns: &[Q4_1Block; COLUMNS]) -> Self {
        Self {
            d: std::array::from_fn(|c| columns[c].d),
            m: std::array::from_fn(|c| columns[c].m),
            qs: lanes(|c| &columns[c].qs[..]),
        }
    }

    fn column(&self, c: usize) -> Q4_1Block {
        Q4_1Block {
            d: self.d[c],
            m: self.m[c],
            qs: unlane(&self.qs, c),
        }
    }

    fn tile<const N: usize>(
        groups: &[Self],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        simd::tile_q4_1(groups, rows)
    }
}

impl Group for Q8_0x8 {
    type Block = Q8_0Block;

    fn new(columns: &[Q8_0Block; COLUMNS]) -> Self {
        Self {
            d: std::array::from_fn(|c| columns[c].d),
            qs: lanes(|c| &columns[c].qs[..]),
        }
    }

    fn column(&self, c: usize) -> Q8_0Block {
        Q8_0Block {
            d: self.d[c],
            qs: unlane(&self.qs, c),
        }
    }

    fn tile<const N: usize>(
        groups: &[Self],
        rows: &[&[ActivationBlock]; N],
    ) -> [[f32; COLUMNS]; N] {
        simd::tile_q8_0(groups, rows)
    }
}

/// A quantised matrix of `rows` output features × `columns` inputs, its rows
/// interleaved eight at a time (the last group padded with zeros).
pub struct Interleaved<G> {
    rows: usize,
    columns: usize,
    /// Group `g`'s blocks, left to right, at `g × columns / 32`.
    pub(super) groups: Vec<G>,
}

pub type Q4_1Matrix = Interleaved<Q4_1x8>;
pub type Q8_0Matrix = Interleaved<Q8_0x8>;

impl<G: Group> Interleaved<G> {
    /// From the raw GGUF bytes of a `[rows, columns]` tensor.
    pub fn from_bytes(rows: usize, columns: usize, bytes: &[u8]) -> Result<Self, String> {
        let blocks = parse_blocks::<G::Block>(rows, columns, bytes)?;
        let per_row = columns / BLOCK;
        let block = |row: usize, index: usize| match row < rows {
            true => blocks[row * per_row + index],
            false => G::Block::ZERO,
        };
        let groups = (0..rows.div_ceil(COLUMNS))
            .flat_map(|group| {
                (0..per_row).map(move |index| {
                    G::new(&std::array::from_fn(|c| block(group * COLUMNS + c, index)))
                })
            })
            .collect();
        Ok(Self {
            rows,
            columns,
            groups,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The matrices stacked (their rows one after another), when they share a width and
    /// all but the last fill whole groups: one product then serves projections that
    /// read the same input.
    pub fn stack(parts: Vec<Self>) -> Result<Self, String> {
        let columns = parts.first().map_or(0, |part| part.columns);
        if parts.iter().any(|part| part.columns != columns) {
            return Err("stacked matrices must have the same number of columns".into());
        }
        let rows: Vec<usize> = parts.iter().map(|part| part.rows).collect();
        if !Self::stackable(&rows) {
            return Err(format!(
                "stacked matrices but the last must have a multiple of {COLUMNS} rows"
            ));
        }
        let groups = parts.into_iter().flat_map(|part| part.groups).collect();
        Ok(Self {
            rows: rows.iter().sum(),
            columns,
            groups,
        })
    }

    /// Whether [`Self::stack`] takes parts of these rows.
    pub fn stackable(rows: &[usize]) -> bool {
        rows.split_last()
            .is_some_and(|(_, but_last)| but_last.iter().all(|rows| rows.is_multiple_of(COLUMNS)))
    }

    /// Row `index` as floats into `out` (`columns` long): an embedding lookup.
    pub fn row(&self, index: usize, out: &mut [f32]) {
        let per_row = self.columns / BLOCK;
        let group = index / COLUMNS;
        let groups = &self.groups[group * per_row..(group + 1) * per_row];
        for (group, chunk) in groups.iter().zip(out.chunks_exact_mut(BLOCK)) {
            group.column(index % COLUMNS).dequantize(chunk);
        }
    }

    /// `input` is `m × columns` (row-major); returns `m × rows`.
    pub fn matmul(&self, input: &[f32]) -> Vec<f32> {
        let per_row = self.columns / BLOCK;
        let m = input.len() / self.columns.max(1);
        let activations = quantize_rows(input);
        let span = GROUPS_PER_TASK * COLUMNS;
        by_column_spans(self.rows, m, span, |first, last, partial| {
            let width = last - first;
            for column in (first..last).step_by(COLUMNS) {
                let group = column / COLUMNS;
                let tile = Tile {
                    groups: &self.groups[group * per_row..(group + 1) * per_row],
                    activations: &activations,
                    per_row,
                    // The padding of the last group is not an output.
                    columns: COLUMNS.min(last - column),
                };
                let mut row = 0;
                while row < m {
                    let out = &mut partial[row * width + column - first..];
                    row += match m - row {
                        1 => tile.multiply::<1>(row, out, width),
                        2 => tile.multiply::<2>(row, out, width),
                        3 => tile.multiply::<3>(row, out, width),
                        _ => tile.multiply::<TILE_ROWS>(row, out, width),
                    };
                }
            }
        })
    }
}

/// One row of groups and the product's quantised activations.
struct Tile<'a, G> {
    groups: &'a [G],
    activations: &'a [ActivationBlock],
    per_row: usize,
    /// How many of the group's columns are outputs.
    columns: usize,
}

impl<G: Group> Tile<'_, G> {
    /// Multiplies `N` activation rows from `first_row` with the groups, writing row
    /// `r`'s sums at `out[r × stride..]`; returns `N`.
    fn multiply<const N: usize>(&self, first_row: usize, out: &mut [f32], stride: usize) -> usize {
        let rows: [&[ActivationBlock]; N] = std::array::from_fn(|r| {
            let start = (first_row + r) * self.per_row;
            &self.activations[start..start + self.per_row]
        });
        for (r, sums) in G::tile(self.groups, &rows).iter().enumerate() {
            out[r * stride..r * stride + self.columns].copy_from_slice(&sums[..self.columns]);
        }
        N
    }
}

/// An `m × columns` product computed in spans of `span` output columns on the rayon
/// pool: `compute(first, last, partial)` fills `partial`, `m × (last - first)`, with
/// columns `first..last`.
fn by_column_spans(
    columns: usize,
    m: usize,
    span: usize,
    compute: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let spans: Vec<(usize, Vec<f32>)> = (0..columns.div_ceil(span))
        .into_par_iter()
        .map(|task| {
            let first = task * span;
            let last = columns.min(first + span);
            let mut partial = vec![0f32; m * (last - first)];
            compute(first, last, &mut partial);
            (first, partial)
        })
        .collect();
    let mut output = vec![0f32; m * columns];
    for (first, partial) in spans {
        let width = partial.len() / m.max(1);
        for row in 0..m {
            output[row * columns + first..row * columns + first + width]
                .copy_from_slice(&partial[row * width..(row + 1) * width]);
        }
    }
    output
}
