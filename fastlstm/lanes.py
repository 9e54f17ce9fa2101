"""Work split over the cores by fastlstm's own threads ("lanes"), each running
single-threaded BLAS and serial kernels.

BLAS's own threads do not pay here. They do not speed up the small per-step products of
a recurrence (20 x 650 times 650 x 2600 ran no faster on two), and after a
multi-threaded call OpenBLAS's workers spin for a while, holding a core: a recurrence on
two lanes took 87 ms right after a two-thread product and 39 ms after a one-thread one.
So every product in the layers runs one block of the work per lane, as a single-threaded
BLAS call or a compiled loop (the recurrence's lanes meet once per step inside theirs:
fastlstm/recurrence.py).
"""

import threading

from fastlstm.threads import get_num_threads, single_threaded_blas


def lane_count(items, min_items):
    """Lanes for `items` units of work (rows, hidden units): one per thread of the thread
    setting, each with at least `min_items`."""
    return max(1, min(get_num_threads(), items // min_items))


def blocks(items, lanes):
    """[(i0, i1), ...]: `lanes` contiguous blocks of range(items), as even as can be."""
    edges = [items * k // lanes for k in range(lanes + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run(lane, items, lanes):
    """lane(k, i0, i1) for each block k of range(items), with single-threaded BLAS: the
    first block on this thread, the others on threads of their own. Returns when all are
    done; an exception in any lane is raised here, once all lanes have stopped."""
    with single_threaded_blas():
        if lanes == 1:
            lane(0, 0, items)
            return
        _run_threads(lane, blocks(items, lanes))


def _run_threads(lane, spans):
    errors = []

    def work(k, i0, i1):
        try:
            lane(k, i0, i1)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k, i0, i1), name=f"fastlstm-lane{k}", daemon=True)
               for k, (i0, i1) in enumerate(spans) if k > 0]
    for thread in threads:
        thread.start()
    work(0, *spans[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
