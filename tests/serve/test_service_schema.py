"""Property-based run of the OpenAPI schema against a live server (centralized, and distributed): no 500, no schema violation.

schemathesis generates paths and parameters from ``/openapi.json`` (random
symbols and dates, mostly malformed or unknown, some valid) and checks each
answer's status code, content type and body against the schema.
"""
from __future__ import annotations

import dask
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from stockdag.serve import ServerThread, create_app

# the conftest's SMALL settings; repeated because a module-scoped server cannot use its function-scoped fixture
SMALL = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
         "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}


@pytest.fixture(scope="module", params=["centralized", pytest.param("distributed", marks=pytest.mark.slow)])
def api_schema(request):
    # distributed mode runs C2 and C5 side by side, so the stage that fails first on bad input differs
    with dask.config.set(SMALL):
        app = create_app(request.param, **({"workers": 2} if request.param == "distributed" else {}))
    with ServerThread(app) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_api_has_no_500_and_follows_its_schema(api_schema):
    # schemathesis' pytest plugin (from_fixture) does not run under pytest 9, so each operation's
    # hypothesis strategy is driven directly
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict/{symbol}", "/symbols", "/health", "/metrics"}
    for op in operations:
        # 30 examples an operation keep the run to seconds; a valid symbol and date costs one refit (~0.3 s)
        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            case.call_and_validate(checks=checks, timeout=60)

        check()
