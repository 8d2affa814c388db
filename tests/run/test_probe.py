"""The attention summary metrics against a hand computation."""

import numpy as np
import pytest

from src.run.probe import AttentionProbe


def test_summary_numbers():
    probe = AttentionProbe.__new__(AttentionProbe)  # the summary reads only the last weights and lengths
    probe._w = np.array([[0.5, 0.5, 0.0, 0.0], [0.1, 0.2, 0.7, 0.0]])
    probe.xm = {"hist_len": np.array([2, 3])}
    probe.relevant = None
    s = probe.summary()
    second = np.array([0.1, 0.2, 0.7])
    assert s["attention_entropy"] == pytest.approx(np.mean([1.0, -(second * np.log(second)).sum() / np.log(3)]))
    assert s["attention_peak"] == pytest.approx(np.mean([0.5 * 2, 0.7 * 3]))  # 1: uniform
    assert s["attention_recent_weight"] == pytest.approx(1.0) and s["attention_recent_uniform"] == pytest.approx(1.0)
