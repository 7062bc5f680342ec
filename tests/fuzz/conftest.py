"""Hypothesis profiles: bounded examples, no per-example deadline (the machine is shared),
derandomized in CI so that a red run is reproducible from its log."""

from hypothesis import HealthCheck, settings

from tests.testenv import IN_CI

_COMMON = {
    "max_examples": 25,  # the whole suite stays within its time budget
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("dev", **_COMMON)
settings.register_profile("ci", derandomize=True, print_blob=True, **_COMMON)
settings.load_profile("ci" if IN_CI else "dev")
