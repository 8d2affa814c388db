import pytest

from src.sweep import SweepError
from src.sweep.placement import placement


def test_workers_are_placed_round_robin_on_the_gpus():
    assert placement(4, ["0", "1"], 2) == ["0", "1", "0", "1"]
    assert placement(3, ["2", "5"], 2) == ["2", "5", "2"]
    assert placement(2, [], 1) == [None, None]
    with pytest.raises(SweepError, match="3 workers do not fit on 1 GPU"):
        placement(3, ["0"], 2)


def test_without_a_gpu_device_node_no_probe_is_started_and_with_one_the_backend_is_asked(tmp_path, monkeypatch):
    import sys

    from src.sweep import placement as p

    asked = []

    def probe(backend, timeout=300):  # stands for the child process that imports the backend
        asked.append(backend)
        return [("CPU", "cpu:0"), ("GPU", "gpu:0"), ("GPU", "gpu:1")]

    monkeypatch.setattr(p, "probe_devices", probe)
    monkeypatch.delenv("DIL_GPUS", raising=False)
    monkeypatch.setattr(p, "GPU_NODES", (str(tmp_path / "nvidia[0-9]*"),))
    if sys.platform != "linux":  # the shortcut is Linux's: elsewhere the backend is always asked
        assert not p.no_gpu_here()
        return
    assert p.no_gpu_here() and p.gpu_ids() == [] and asked == []
    (tmp_path / "nvidia0").touch()  # a driver's device node: the backend decides
    assert not p.no_gpu_here() and p.gpu_ids() == ["0", "1"] and len(asked) == 1
    monkeypatch.setenv("DIL_GPUS", "3")  # named GPUs are taken as they are
    assert p.gpu_ids() == ["3"] and len(asked) == 1
