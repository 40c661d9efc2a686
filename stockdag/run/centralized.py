"""The centralized baseline: one request's stages one after another, in this process, no Dask."""
from __future__ import annotations

from ..pipeline.graph import run_stages
from ..pipeline.request import Request
from ..pipeline.result import PredictionResult


class CentralizedExecutor:
    """Runs each request's pipeline sequentially in the calling process."""

    mode = "centralized"

    def run(self, request: Request) -> PredictionResult:
        return PredictionResult.from_traced(run_stages(request), self.mode, request.request_id, request.pipeline)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
