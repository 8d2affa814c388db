import pytest

from src.sweep import SweepError
from src.sweep.placement import placement


def test_workers_are_placed_round_robin_on_the_gpus():
    assert placement(4, ["0", "1"], 2) == ["0", "1", "0", "1"]
    assert placement(3, ["2", "5"], 2) == ["2", "5", "2"]
    assert placement(2, [], 1) == [None, None]
    with pytest.raises(SweepError, match="3 workers do not fit on 1 GPU"):
        placement(3, ["0"], 2)
