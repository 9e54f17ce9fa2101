"""kernels/spin.py: a lane's wait ends once every lane has published the step, gives up
after its spins, and stops when a lane failed."""

import numpy as np

from fastlstm.kernels.spin import ABORT, publish, wait_all


def test_wait_ends_when_every_lane_has_published():
    progress = np.zeros(3 + 1, dtype=np.int64)
    publish(progress, 0, 5)
    publish(progress, 2, 5)
    assert wait_all(progress, 5, 100) == 0  # lane 1 is behind: give up after 100 spins
    publish(progress, 1, 6)
    assert wait_all(progress, 5, 1) == 1
    assert wait_all(progress, 6, 1) == 0
    assert list(progress) == [5, 6, 5, 0]


def test_wait_stops_when_a_lane_failed():
    progress = np.zeros(2 + 1, dtype=np.int64)
    publish(progress, 0, 3)
    progress[ABORT] = 1
    assert wait_all(progress, 3, 10 ** 9) == -1  # returns at once, not after 10**9 spins
