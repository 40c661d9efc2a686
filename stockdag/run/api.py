"""The one-call public API: :func:`predict`."""
from __future__ import annotations

from ..pipeline.modes import CENTRALIZED, PREDICT_MODES, check_mode
from ..pipeline.request import parse_request
from ..pipeline.result import PredictionResult


def predict(symbol: str, as_of=None, *, mode: str = "centralized", client=None, profile: str | None = None,
            source: str | None = None, data_dir: str | None = None, strategy: str | None = None,
            pipeline=None, configure_cluster: bool | None = None) -> PredictionResult:
    """Predict the next-day close of ``symbol`` as of a date (default: the last day of data).

    Parameters
    ----------
    symbol : str
        Ticker, e.g. ``"AAPL"``; ``stockdag symbols`` lists the bundled ones.
    as_of : str or datetime.date, optional
        ``YYYY-MM-DD``; a non-trading day uses the last trading day before it.
    mode : {"centralized", "distributed"}, one of :data:`stockdag.pipeline.modes.PREDICT_MODES`
        Run the stages in this process, or as a Dask graph on ``client``
        (None starts a temporary 2-worker LocalCluster).
    configure_cluster : bool, optional
        With your own ``client``: install stockdag's placement plugin, 1 ms stream
        intervals and worker log filter on its cluster, which then apply to every
        client of it (default ``stockdag.configure_cluster``, true); False leaves the
        cluster as it is (see :class:`~stockdag.run.distributed.DistributedExecutor`).
    profile, source, data_dir, strategy
        Override ``stockdag.profile``, ``stockdag.data.source``,
        ``stockdag.data.data_dir`` and ``stockdag.placement.strategy``.
    pipeline : str, dict or PipelineSpec, optional
        Pipeline spec (a YAML file such as ``experiments/pipelines/wide.yaml``):
        the competing models and extra steps; default ``stockdag.pipeline.spec``,
        else C1-C12 with five models.

    Raises
    ------
    stockdag.StockdagError
        InvalidRequest, InsufficientHistory, UnknownSymbol, DataSourceError,
        ModelStoreError or PipelineSpecError, each with a one-line message.
    """
    # validating here rejects bad input before any cache, file or cluster is touched
    request = parse_request(symbol, as_of, profile=profile, source=source, data_dir=data_dir, pipeline=pipeline)
    if check_mode(mode, PREDICT_MODES) == CENTRALIZED:
        from .centralized import CentralizedExecutor

        return CentralizedExecutor().run(request)
    from .distributed import DistributedExecutor

    with DistributedExecutor(client=client, strategy=strategy, dashboard_address=None,
                             configure_cluster=configure_cluster) as ex:
        return ex.run(request)
