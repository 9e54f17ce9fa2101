"""What NumPy's `np.random.choice(n, size=1, p=p)` computes around its one uniform draw,
as NumPy computes it, in compiled passes.

NumPy's legacy choice converts p to float64, checks that every p lies in [0, 1] and that
their Kahan sum is within `atol` of 1, then takes cdf = p.cumsum(), cdf /= cdf[-1], draws
a uniform number u and searches it in cdf (side 'right'). Its checks and temporaries
cost far more than the arithmetic at the size of a vocabulary. Here the same additions
and divisions, in the same order, with no fast-math flag (a division must stay a
division), so a draw picks NumPy's index.
"""

from numba import njit

# p of more entries than this go to NumPy: up to it, the plain sum that choice_cdf checks
# lies within half of NumPy's tolerance of the Kahan sum that NumPy checks.
MAX_ENTRIES = 1 << 26


@njit(cache=True, nogil=True)
def choice_cdf(p, atol, cdf):
    """Fill cdf (n,) float64 with the running sums of p (n,) in float64, NumPy's cdf before
    its division by the last, and return True; or return False where NumPy's choice might
    refuse p (empty, an entry outside [0, 1] or NaN, or a sum further than atol / 2 from 1,
    where the Kahan sum NumPy checks lies within atol / 2 of the plain sum): the caller
    then lets NumPy decide."""
    n = p.shape[0]
    if n == 0 or n > MAX_ENTRIES:
        return False
    total = 0.0
    for i in range(n):
        x = 0.0 + p[i]
        if not (0.0 <= x <= 1.0):
            return False
        total += x
        cdf[i] = total
    return abs(total - 1.0) <= 0.5 * atol


@njit(cache=True, nogil=True)
def search_normalized(cdf, u):
    """cdf / cdf[-1] searched for u, side 'right' (the first i with cdf[i] / cdf[-1] > u),
    dividing only the entries that the binary search visits: division by a positive number
    keeps the order, so the result is NumPy's searchsorted on the divided cdf."""
    last = cdf[cdf.shape[0] - 1]
    lo, hi = 0, cdf.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] / last <= u:
            lo = mid + 1
        else:
            hi = mid
    return lo
