"""Two executors of the same stage functions: centralized (no Dask) and distributed."""
from .centralized import CentralizedExecutor  # noqa: F401
from .distributed import DistributedExecutor  # noqa: F401
