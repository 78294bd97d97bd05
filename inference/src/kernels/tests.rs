//! The kernels against candle's products and dequantisation, the SIMD paths against
//! the portable one, and the repacking and stacking of groups.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::interleaved::{COLUMNS, Group, Interleaved, Q4_1x8, Q8_0x8};
use super::*;

fn values(count: usize, seed: u32) -> Vec<f32> {
    (0..count)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn quantized(values: &[f32], rows: usize, columns: usize, dtype: GgmlDType) -> QTensor {
    let tensor = Tensor::from_slice(values, (rows, columns), &Device::Cpu).unwrap();
    QTensor::quantize(&tensor, dtype).unwrap()
}

fn assert_close(got: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (index, (a, b)) in got.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() < tolerance * (1.0 + b.abs()),
            "{what} [{index}]: {a} vs {b}"
        );
    }
}

/// Our product against candle's for the same quantised weights, at several batch
/// sizes (including ones that leave a partial tile), with 70 rows (a partial group).
fn matches_candle<G: Group>(dtype: GgmlDType) {
    let (rows, columns) = (70, 128);
    let weights = values(rows * columns, 7);
    let tensor = quantized(&weights, rows, columns, dtype);
    let ours = Interleaved::<G>::from_bytes(rows, columns, &tensor.data().unwrap()).unwrap();
    let theirs = QMatMul::from_qtensor(tensor).unwrap();
    for m in [1, 3, 4, 9] {
        let input = values(m * columns, 11 + m as u32);
        let expected: Vec<f32> = theirs
            .forward(&Tensor::from_slice(&input, (m, columns), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let what = format!("{dtype:?} m={m}");
        assert_close(&ours.matmul(&input), &expected, 2e-3, &what);
    }
}

#[test]
fn the_products_match_candles_for_one_row_and_for_batches() {
    matches_candle::<Q4_1x8>(GgmlDType::Q4_1);
    matches_candle::<Q8_0x8>(GgmlDType::Q8_0);
}

#[test]
fn interleaving_keeps_every_columns_block() {
    let tensor = quantized(&values(COLUMNS * 32, 13), COLUMNS, 32, GgmlDType::Q4_1);
    let blocks = parse_blocks::<Q4_1Block>(COLUMNS, 32, &tensor.data().unwrap()).unwrap();
    let group = Q4_1x8::new(&std::array::from_fn(|c| blocks[c]));
    for (c, original) in blocks.iter().enumerate() {
        let back = group.column(c);
        assert_eq!(
            (back.d, back.m, back.qs),
            (original.d, original.m, original.qs),
            "column {c}"
        );
    }
    let tensor = quantized(&values(COLUMNS * 32, 14), COLUMNS, 32, GgmlDType::Q8_0);
    let blocks = parse_blocks::<Q8_0Block>(COLUMNS, 32, &tensor.data().unwrap()).unwrap();
    let group = Q8_0x8::new(&std::array::from_fn(|c| blocks[c]));
    for (c, original) in blocks.iter().enumerate() {
        let back = group.column(c);
        assert_eq!((back.d, back.qs), (original.d, original.qs), "column {c}");
    }
}

/// The SIMD tile of `G` against the portable one, on four activation rows of which one
/// holds -127 and 127 (the extremes the products must not saturate on).
fn simd_matches_portable<G: Group>(
    dtype: GgmlDType,
    avx2: impl Fn(&[G], &[&[ActivationBlock]; 4]) -> [[f32; COLUMNS]; 4],
) {
    let (rows, columns) = (8, 64);
    let per_row = columns / BLOCK;
    let mut input = values(4 * columns, 5);
    input[..columns]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = if i % 2 == 0 { 4.0 } else { -4.0 });
    let activations = quantize_rows(&input);
    let rows_in: [&[ActivationBlock]; 4] =
        std::array::from_fn(|r| &activations[r * per_row..(r + 1) * per_row]);
    let tensor = quantized(&values(rows * columns, 3), rows, columns, dtype);
    let matrix = Interleaved::<G>::from_bytes(rows, columns, &tensor.data().unwrap()).unwrap();
    let groups = &matrix.groups[..per_row];
    let portable = portable::tile(groups, &rows_in).concat();
    let what = format!("{dtype:?}");
    assert_close(&G::tile(groups, &rows_in).concat(), &portable, 1e-4, &what);
    // Whichever path `tile` took, the plain AVX2 one must agree too.
    assert_close(
        &avx2(groups, &rows_in).concat(),
        &portable,
        1e-4,
        &format!("{what} on AVX2"),
    );
}

#[test]
fn the_portable_path_agrees_with_the_simd_paths() {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the build enables AVX2, FMA and F16C.
        simd_matches_portable::<Q4_1x8>(GgmlDType::Q4_1, |g, r| unsafe {
            simd::avx2::tile_q4_1(g, r)
        });
        simd_matches_portable::<Q8_0x8>(GgmlDType::Q8_0, |g, r| unsafe {
            simd::avx2::tile_q8_0(g, r)
        });
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        simd_matches_portable::<Q4_1x8>(GgmlDType::Q4_1, |g, r| portable::tile(g, r));
        simd_matches_portable::<Q8_0x8>(GgmlDType::Q8_0, |g, r| portable::tile(g, r));
    }
}

fn q4_1_bytes(weights: &[f32], rows: usize, columns: usize) -> Vec<u8> {
    quantized(weights, rows, columns, GgmlDType::Q4_1)
        .data()
        .unwrap()
        .to_vec()
}

#[test]
fn a_stacked_product_is_its_parts_side_by_side() {
    let columns = 64;
    let parts = [(16, 1), (8, 2), (5, 3)];
    let matrices = || {
        parts.map(|(rows, seed)| {
            let bytes = q4_1_bytes(&values(rows * columns, seed), rows, columns);
            Q4_1Matrix::from_bytes(rows, columns, &bytes).unwrap()
        })
    };
    let input = values(3 * columns, 17);
    let stacked = Q4_1Matrix::stack(matrices().into()).unwrap();
    assert_eq!(stacked.rows(), 29);
    let separate: Vec<Vec<f32>> = matrices().iter().map(|part| part.matmul(&input)).collect();
    let side_by_side: Vec<f32> = (0..3)
        .flat_map(|token| {
            separate
                .iter()
                .zip(parts)
                .flat_map(move |(output, (rows, _))| {
                    output[token * rows..(token + 1) * rows].to_vec()
                })
        })
        .collect();
    assert_eq!(stacked.matmul(&input), side_by_side);
}

#[test]
fn only_whole_groups_stack_before_the_last_part() {
    let part = |rows| Q4_1Matrix::from_bytes(rows, 32, &vec![0; rows * 20]).unwrap();
    assert!(Q4_1Matrix::stackable(&[8, 5]));
    assert!(!Q4_1Matrix::stackable(&[5, 8]));
    assert_eq!(
        Q4_1Matrix::stack(vec![part(5), part(8)]).map(|_| ()),
        Err("stacked matrices but the last must have a multiple of 8 rows".into())
    );
    assert_eq!(
        Q4_1Matrix::stack(vec![
            part(8),
            Q4_1Matrix::from_bytes(8, 64, &[0; 320]).unwrap()
        ])
        .map(|_| ()),
        Err("stacked matrices must have the same number of columns".into())
    );
}

#[test]
fn rows_dequantize_to_what_candle_dequantizes() {
    let (rows, columns) = (12, 64);
    let weights = values(rows * columns, 9);
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let tensor = quantized(&weights, rows, columns, dtype);
        let expected: Vec<Vec<f32>> = tensor.dequantize(&Device::Cpu).unwrap().to_vec2().unwrap();
        let mut row = vec![0f32; columns];
        let bytes = tensor.data().unwrap();
        for index in [2, 9] {
            match dtype {
                GgmlDType::Q4_1 => Q4_1Matrix::from_bytes(rows, columns, &bytes)
                    .unwrap()
                    .row(index, &mut row),
                _ => Q8_0Matrix::from_bytes(rows, columns, &bytes)
                    .unwrap()
                    .row(index, &mut row),
            }
            assert_eq!(row, expected[index], "{dtype:?} row {index}");
        }
    }
}

#[test]
fn malformed_tensors_are_refused() {
    let refused = |result: Result<(), String>| result;
    assert_eq!(
        refused(Q4_1Matrix::from_bytes(2, 33, &[0; 40]).map(|_| ())),
        Err("33 columns are not a multiple of 32".into())
    );
    assert_eq!(
        refused(Q4_1Matrix::from_bytes(2, 32, &[0; 39]).map(|_| ())),
        Err("a 2x32 Q4_1 tensor takes 40 bytes, found 39".into())
    );
    assert_eq!(
        refused(Q8_0Matrix::from_bytes(1, 32, &[0; 33]).map(|_| ())),
        Err("a 1x32 Q8_0 tensor takes 34 bytes, found 33".into())
    );
}
