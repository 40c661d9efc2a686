"""What a ticker symbol looks like, as every source and request accepts it (no I/O, no heavy import)."""
from __future__ import annotations

import re

#: ``AAPL``, ``BRK.B``, ``BF-B``; checked before any cache, file or source is touched
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}([.\-^=][A-Z0-9]{1,5})?$")
