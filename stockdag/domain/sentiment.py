"""C4 score_sentiment: NLTK VADER sentiment of headlines, aggregated per day.

``nltk.download`` cannot run offline, so the analyzer loads the VADER lexicon
that the ``vaderSentiment`` package ships. nltk >= 3.9 refuses a bare file
path as a resource, so the package folder is appended to ``nltk.data.path``
and the lexicon passed as a ``file:`` URI.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import nltk
import pandas as pd

from .data.news import NewsData


@functools.lru_cache(maxsize=1)
def analyzer():
    """The process-wide VADER analyzer (the lexicon is parsed once per process)."""
    import vaderSentiment
    from nltk.sentiment.vader import SentimentIntensityAnalyzer

    folder = os.path.dirname(vaderSentiment.__file__)
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
    return SentimentIntensityAnalyzer(lexicon_file="file:" + os.path.join(folder, "vader_lexicon.txt"))


def polarity(text: str) -> float:
    """VADER compound score of one text, in [-1, 1]."""
    return analyzer().polarity_scores(text)["compound"]


@dataclass(frozen=True)
class Sentiment:
    """Daily sentiment: ``daily`` has columns sent_mean and sent_count, indexed by date."""

    symbol: str
    daily: pd.DataFrame
    headlines: int

    def summary(self, days: int = 5) -> dict:
        recent = self.daily.tail(days)
        latest = self.daily.iloc[-1] if len(self.daily) else None
        return {
            "headlines": int(self.headlines),
            "latest_day": latest.name.date().isoformat() if latest is not None else None,
            "latest": float(latest["sent_mean"]) if latest is not None else 0.0,
            f"mean_{days}d": float(recent["sent_mean"].mean()) if len(recent) else 0.0,
        }


def score_sentiment(news: NewsData) -> Sentiment:
    """C4: score every headline with VADER and average the compound score per day."""
    frame = news.frame
    if frame.empty:
        daily = pd.DataFrame({"sent_mean": pd.Series(dtype=float), "sent_count": pd.Series(dtype=float)})
        daily.index = pd.DatetimeIndex([], name="date")
        return Sentiment(symbol=news.symbol, daily=daily, headlines=0)
    sia = analyzer()
    scores = pd.Series([sia.polarity_scores(h)["compound"] for h in frame["headline"]], index=frame.index)
    day = pd.to_datetime(frame["date"]).dt.normalize()
    daily = scores.groupby(day).agg(["mean", "count"]).rename(columns={"mean": "sent_mean", "count": "sent_count"})
    daily.index.name = "date"
    return Sentiment(symbol=news.symbol, daily=daily.astype(float), headlines=len(frame))
