"""kernels/packed_product.py at every vector width the host runs: the tile follows the CPU
Numba compiles for, and each width's kernel gives the same bits, within float rounding of
single-threaded BLAS (to the bit where BLAS, too, rounds once per element: K = 1)."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

import fastlstm
from fastlstm.kernels import packed_product as pp

# The features that make each width on x86-64: none (SSE2), AVX, AVX-512.
X86_FEATURES = {16: "", 32: "+avx,+avx2,+fma", 64: "+avx,+avx2,+fma,+avx512f"}
HOST_TRIPLE = pp.cpu_target.target_context.codegen().magic_tuple()[0]
ON_X86 = HOST_TRIPLE.startswith("x86_64")
# A tile per width the host runs, as a machine of that width would choose it.
TILES = ([pp.tile_for(HOST_TRIPLE, X86_FEATURES[v]) for v in X86_FEATURES if v <= pp.TILE.vector_bytes]
         if ON_X86 else [pp.TILE])
SIZES = list(itertools.product([1, 3, 5, 13, 20], [1, 7, 17, 33, 650, 2600], [1, 16, 100, 650]))


def test_tile_follows_the_features_llvm_gets():
    assert pp.tile_for("x86_64-unknown-linux-gnu", "") == pp.Tile(16, 6)  # NUMBA_CPU_NAME=generic
    assert pp.tile_for("x86_64-unknown-linux-gnu", "+sse2,+avx,+avx2,+fma,-avx512f") == pp.Tile(32, 6)
    assert pp.tile_for("x86_64-unknown-linux-gnu", "+avx2,+avx512f,+avx512vl") == pp.Tile(64, 11)
    assert pp.tile_for("aarch64-unknown-linux-gnu", "+neon") == pp.Tile(16, 11)
    assert pp.tile_for("riscv64-unknown-linux-gnu", "+v") == pp.Tile(16, 6)
    for tile in TILES:  # the accumulators, the panel's vectors and a broadcast fit the registers
        registers = 32 if tile.vector_bytes == 64 else 16
        assert pp.PANEL_VECTORS * tile.rows + pp.PANEL_VECTORS + 1 <= registers and tile.rows <= pp.MAX_TILE_ROWS


def _product(tile, a, b):
    p = np.full(pp.packed_shape(*b.shape, a.dtype, tile), np.nan, a.dtype)
    pp.pack(b, p, tile=tile)
    c = np.full((a.shape[0], b.shape[1]), np.nan, a.dtype)
    pp.product_kernel(tile)(a, p, c, np.full((tile.rows, pp.panel_width(a.dtype, tile)), np.nan, a.dtype))
    return c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_width_gives_the_same_bits_within_rounding_of_blas(dtype):
    """Each width sums every element's products in order of k, fused or not alike: the
    widths agree to the bit. BLAS sums in orders of its own, so against it the bound
    is float rounding's, 2 * gamma_K * sum of |a_k b_k| (each result within gamma_K =
    K u / (1 - K u) of the exact sum); at K = 1 both round one product once: the same bits."""
    rng = np.random.default_rng(5)
    u = np.finfo(dtype).eps / 2
    with threadpoolctl.threadpool_limits(1, "blas"):
        for M, n, K in SIZES:
            a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, n)).astype(dtype)
            blas = a @ b
            results = [_product(tile, a, b) for tile in TILES]
            for tile, c in zip(TILES[1:], results[1:]):
                np.testing.assert_array_equal(c, results[0], err_msg=f"{tile} against {TILES[0]}, {M}x{K}x{n}")
            if K == 1:
                np.testing.assert_array_equal(results[0], blas, err_msg=f"{M}x{K}x{n}")
            gamma = K * u / (1 - K * u)
            bound = 2 * gamma * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
            assert (np.abs(results[0].astype(np.float64) - blas) <= bound).all(), f"{M}x{K}x{n}"


def test_rows_split_evenly_over_the_fewest_tiles():
    """Whatever the split, each element is its own sum in order of k: a row on its own gives
    its bits in any block of rows (with rows more than a tile holds, and fewer)."""
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((2 * pp.TILE.rows + 3, 40)), rng.standard_normal((40, 37))
    whole = _product(pp.TILE, a, b)
    for r0, r1 in [(0, 1), (1, pp.TILE.rows + 2), (3, a.shape[0])]:
        np.testing.assert_array_equal(_product(pp.TILE, a[r0:r1], b), whole[r0:r1])


# Imports the kernel alone (fastlstm's own __init__ would compile every eager kernel into the
# empty cache first), computes a product and prints the kernel's name and cache counts.
KERNEL_ALONE = """
import sys, types
import numpy as np
package = types.ModuleType("fastlstm")
package.__path__ = [{package!r}]
sys.modules["fastlstm"] = package
from fastlstm.kernels import packed_product as pp
a = np.ones((3, 5), np.float32)
p = np.zeros(pp.packed_shape(5, 9, np.float32), np.float32)
pp.pack(np.ones((5, 9), np.float32), p)
c = np.zeros((3, 9), np.float32)
pp.packed_product(a, p, c, np.zeros((pp.TILE_ROWS, p.shape[2]), np.float32))
assert (c == 5).all()
stats = pp.packed_product.stats
print(pp.packed_product.__name__, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_the_tile_and_the_cache_follow_the_cpu_numba_compiles_for(tmp_path):
    """NUMBA_CPU_NAME=generic (no AVX) gets SSE2's 16-byte vectors, the host its own tile,
    each kernel under a name of its own; Numba keys its cache on the CPU and features too:
    a kernel cached under generic is compiled again on the host, and loaded again under
    generic."""
    code = KERNEL_ALONE.format(package=str(Path(fastlstm.__file__).parent))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)

    def run(**extra):
        name, hits, misses = subprocess.run([sys.executable, "-c", code], env=dict(env, **extra), capture_output=True,
                                            text=True, timeout=300, check=True).stdout.split()
        return name, int(hits), int(misses)

    host = f"packed_product_{pp.TILE.vector_bytes * 8}x{pp.TILE.rows}"
    assert run(NUMBA_CPU_NAME="generic") == ("packed_product_128x6", 0, 1)
    assert run() == (host, 0, 1)
    assert run(NUMBA_CPU_NAME="generic") == ("packed_product_128x6", 1, 0)
