"""The Ray tests start Ray, which binds beyond loopback unless its network namespace has loopback alone:
they run in such a namespace (`python -m tests.support.passes`, the `ray` pass of `make test`, starts one)
and fail with that advice anywhere else, before any Ray process starts."""

import os

import pytest

from src.tools import netns

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture(autouse=True)
def _loopback_only():
    if not netns.loopback_only():
        pytest.fail(f"the Ray tests must run in a loopback-only network namespace (this one has "
                    f"{', '.join(netns.interfaces())}): run them with `make test`, or "
                    f"`{' '.join(netns.wrap(['python', '-m', 'pytest', 'tests/cluster']))}`")
