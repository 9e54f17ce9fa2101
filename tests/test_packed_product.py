"""kernels/packed_product.py: the recurrence's small-row products on a packed operand equal
NumPy's to rounding at odd sizes (rows not a multiple of the tile, columns not of the
panel), from operands in any layout, and a block of columns gives the whole product's bits."""

import itertools

import numpy as np
import pytest

from fastlstm.kernels.packed_product import PACK_ROWS, TILE_ROWS, pack, packed_product, packed_shape, panel_width

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-13}


def _product(a, b):
    p = np.full(packed_shape(*b.shape, a.dtype), np.nan, a.dtype)
    pack(b, p)
    c = np.full((a.shape[0], b.shape[1]), np.nan, a.dtype)
    packed_product(a, p, c, np.full((TILE_ROWS, panel_width(a.dtype)), np.nan, a.dtype))
    return c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy_at_odd_sizes(dtype):
    rng = np.random.default_rng(0)
    W = panel_width(dtype)
    for M, K, n in itertools.product([1, 2, 5, 7, 20], [1, 13, 100], [1, W - 1, W, W + 1, 3 * W + 5]):
        a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, n)).astype(dtype)
        exact = a.astype(np.float64) @ b.astype(np.float64)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(_product(a, b), exact, rtol=tol, atol=tol * np.sqrt(K), err_msg=f"{M}x{K}x{n}")


@pytest.mark.parametrize("layout", ["C", "F", "columns of a wider C array", "transposed rows"])
def test_operand_in_any_layout(layout):
    rng = np.random.default_rng(1)
    whole = rng.standard_normal((40, 60))
    b = {"C": whole[:, :37].copy(), "F": np.asfortranarray(whole[:, :37]),
         "columns of a wider C array": whole[:, 11:48], "transposed rows": whole.T.copy()[5:42].T}[layout]
    a = rng.standard_normal((7, b.shape[0]))
    np.testing.assert_allclose(_product(a, b), a @ b, rtol=1e-13, atol=1e-12)


def test_zero_padding_of_the_last_panel():
    b = np.ones((3, 5), np.float32)
    p = np.full(packed_shape(3, 5, np.float32), np.nan, np.float32)
    pack(b, p)
    assert p.shape == (1, 3, panel_width(np.float32))
    assert (p[0, :, :5] == 1).all() and (p[0, :, 5:] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_block_of_columns_gives_the_whole_products_bits(dtype):
    """What lets the recurrence's lanes agree with one lane to the bit."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((20, 65)).astype(dtype), rng.standard_normal((65, 50)).astype(dtype)
    whole = _product(a, b)
    for j0, j1 in [(0, 17), (17, 50), (3, 4)]:
        np.testing.assert_array_equal(_product(a, b[:, j0:j1]), whole[:, j0:j1])


def test_no_inner_dimension_gives_zeros():
    np.testing.assert_array_equal(_product(np.zeros((3, 0)), np.zeros((0, 9))), np.zeros((3, 9)))


@pytest.mark.parametrize("order", ["C", "F"])
def test_column_blocks_pack_as_their_concatenation(order):
    """A lane's f, g, i, o columns of Wh: blocks of width K at g * H + j0."""
    H, j0, K = 2 * PACK_ROWS + 5, 3, 5  # rows: two whole blocks of the packing and a part
    Wh = np.asarray(np.random.default_rng(3).standard_normal((H, 4 * H)), order=order)
    starts = [g * H + j0 for g in range(4)]
    p = np.full(packed_shape(H, 4 * K, Wh.dtype), np.nan)
    pack(Wh, p, starts=starts, width=K)
    expected = np.full_like(p, np.nan)
    pack(np.concatenate([Wh[:, s:s + K] for s in starts], axis=1), expected)
    np.testing.assert_array_equal(p, expected)


def test_pack_refuses_blocks_or_a_target_that_do_not_fit():
    b = np.zeros((4, 20))
    with pytest.raises(ValueError, match="do not fit"):
        pack(b, np.zeros(packed_shape(4, 10, b.dtype)), starts=[0, 15], width=5 + 1)
    with pytest.raises(ValueError, match="do not fit"):
        pack(b, np.zeros(packed_shape(4, 5, b.dtype)), starts=[-1], width=5)
    with pytest.raises(ValueError, match="shape"):
        pack(b, np.zeros((1, 4, 7)))
    with pytest.raises(ValueError, match="float64"):
        pack(b, np.zeros(packed_shape(4, 20, np.float32), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["blocks", "rows", "transposed"])
def test_a_mask_packs_as_the_masked_operand(dtype, case):
    """Weight drop: pack(b, mask=m) lays out b * m, on every path (a lane's column blocks, a
    row-contiguous operand, the transposed rows of backward), without a masked copy."""
    H, j0, K = PACK_ROWS + 7, 2, 19
    rng = np.random.default_rng(4)
    Wh = rng.standard_normal((H, 4 * H)).astype(dtype)
    mask = ((rng.random(Wh.shape) > 0.5) * 2).astype(dtype)
    kwargs, b, m = {}, Wh, mask
    if case == "blocks":
        kwargs = dict(starts=[g * H + j0 for g in range(4)], width=K)
    elif case == "transposed":
        b, m = Wh[j0:j0 + K].T, mask[j0:j0 + K].T
    columns = 4 * K if case == "blocks" else b.shape[1]
    p, expected = (np.full(packed_shape(b.shape[0], columns, dtype), np.nan, dtype) for _ in range(2))
    pack(b, p, mask=m, **kwargs)
    pack(np.ascontiguousarray(b * m), expected, **{k: v for k, v in kwargs.items()})
    np.testing.assert_array_equal(p, expected)
    with pytest.raises(ValueError, match="mask must be"):
        pack(b, p, mask=m[:-1], **kwargs)
