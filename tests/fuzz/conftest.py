"""Hypothesis profiles for the fuzz suite: small and fast locally, derandomized in CI."""

import os

from hypothesis import HealthCheck, settings

COMMON = {
    "deadline": None,  # the database and the test client are slow under load; not a timing test
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("dev", max_examples=25, **COMMON)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **COMMON)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

from tests.site.conftest import collection, generator, tiny_artifact  # noqa: E402,F401
