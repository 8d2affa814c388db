"""A loopback-only network namespace for what must not listen beyond loopback (Ray, in tests and benchmarks).

    netns.wrap(argv)     argv, run in a new network namespace where loopback is the only interface, up
    netns.loopback_only()  whether this process already runs in one

As root: `unshare -n`; as another user: `unshare -rn` (a user namespace maps it to root there). The
commands come from util-linux (unshare) and iproute2 (ip), which `make system-deps` installs.
"""

from __future__ import annotations

import os
import socket


def interfaces() -> list[str]:
    """The network interfaces of this process's namespace (/sys/class/net would show the host's)."""
    return sorted(name for _, name in socket.if_nameindex())


def loopback_only() -> bool:
    return interfaces() == ["lo"]


def wrap(argv: list[str]) -> list[str]:
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
