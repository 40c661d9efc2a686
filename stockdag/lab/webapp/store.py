"""The run store: :class:`RunStore` keeps finished runs on disk (raw records CSV and summary JSON, one
folder a run) so the comparison view survives page reloads and server restarts."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
from pathlib import Path

import pandas as pd

from ... import config
from ..bench import BenchResult, write_records

_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class RunStore:
    """Finished runs on disk: ``<folder>/<run id>/records.csv`` and ``run.json`` (summary and meta).

    ``folder`` defaults to ``stockdag.webapp.store`` or ``~/.cache/stockdag/webapp``.
    Run ids sort by start time.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        folder = config.get("webapp.store", folder)
        self.folder = Path(folder).expanduser() if folder else Path.home() / ".cache" / "stockdag" / "webapp"
        self._lock = threading.Lock()
        self._records: dict[str, pd.DataFrame] = {}

    def save(self, result: BenchResult, meta: dict) -> str:
        run_id = _stamp()
        path = self.folder / run_id
        path.mkdir(parents=True, exist_ok=True)
        write_records(result.records, str(path / "records.csv"))
        doc = {"id": run_id, "meta": meta, "summary": result.summary.to_dict()}
        tmp = path / "run.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        tmp.replace(path / "run.json")  # a listing never sees a half-written run
        return run_id

    def valid(self, run_id: str) -> bool:
        return bool(_RUN_ID.match(run_id)) and (self.folder / run_id / "run.json").is_file()

    def list(self) -> list[dict]:
        """Every stored run's ``run.json`` content, oldest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.iterdir()):
            f = p / "run.json"
            if _RUN_ID.match(p.name) and f.is_file():
                try:
                    out.append(json.loads(f.read_text()))
                except ValueError:
                    continue  # a damaged file: leave it out of the listing rather than break the page
        return out

    def csv_path(self, run_id: str) -> Path:
        if not self.valid(run_id):
            raise KeyError(run_id)
        return self.folder / run_id / "records.csv"

    def records(self, run_id: str) -> pd.DataFrame:
        with self._lock:
            df = self._records.get(run_id)
        if df is None:
            df = pd.read_csv(self.csv_path(run_id), keep_default_na=False, na_values={"latency": [""]})
            with self._lock:
                self._records[run_id] = df
        return df

    def delete(self, run_id: str) -> None:
        path = self.csv_path(run_id).parent
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
        with self._lock:
            self._records.pop(run_id, None)
