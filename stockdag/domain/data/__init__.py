"""Data retrievers (C2 prices, C5 news) and the caching layer (C6) in front of them."""
from __future__ import annotations

import importlib
from typing import Any

# imported on first use (PEP 562): the retrievers pull in pandas, which a symbol check never needs
_LAZY = {"get_cache": "cache", "NewsData": "news", "get_news_source": "news", "PriceData": "prices",
         "get_price_source": "prices"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
