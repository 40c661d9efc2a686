"""The domain layer: what a stage computes (data sources, features, sentiment, market factors, models).

It knows nothing of Dask, executors or the lab. See :doc:`/development/architecture`.
"""
