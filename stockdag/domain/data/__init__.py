"""Data retrievers (C2 prices, C5 news) and the caching layer (C6) in front of them."""
from .cache import get_cache  # noqa: F401
from .news import NewsData, get_news_source  # noqa: F401
from .prices import PriceData, get_price_source  # noqa: F401
