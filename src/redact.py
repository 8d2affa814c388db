"""Passwords out of what the project prints and logs: `redact(text)` hides the password of any URL
with credentials (scheme://user:***@host). Used by the run logger, the sweep and the tools alike."""

from __future__ import annotations

import re

_SECRET = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")


def redact(text: str) -> str:
    """Hides the password of any URL with credentials: scheme://user:***@host."""
    return _SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
