"""TLS for clusters whose scheduler and workers start elsewhere and take this process's configuration.

The ec2 kind gets it from dask-cloudprovider (``security=True``); the ssh kind uses the same two
steps here: :func:`temporary` makes distributed's in-memory self-signed credentials
(``Security.temporary``, what dask-cloudprovider calls) and :func:`inherited_config` puts them into
the ``distributed.comm`` keys that a process started with ``DASK_INTERNAL_INHERIT_CONFIG`` reads, so
every remote scheduler and worker speaks ``tls://`` and refuses plain TCP.
"""
from __future__ import annotations


def temporary():
    """A new :class:`distributed.Security` with one temporary key and certificate for every role."""
    from distributed import Security

    return Security.temporary()


def inherited_config(security) -> dict:
    """The ``dask.config`` keys that make a process started with this configuration use ``security``."""
    return {
        "distributed.comm.default-scheme": "tls",
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": security.tls_ca_file,
        "distributed.comm.tls.scheduler.key": security.tls_scheduler_key,
        "distributed.comm.tls.scheduler.cert": security.tls_scheduler_cert,
        "distributed.comm.tls.worker.key": security.tls_worker_key,
        "distributed.comm.tls.worker.cert": security.tls_worker_cert,
        "distributed.comm.tls.client.key": security.tls_client_key,
        "distributed.comm.tls.client.cert": security.tls_client_cert,
    }
