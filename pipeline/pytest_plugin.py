"""pytest plugin (registered through the ``pytest11`` entry point): the gate's command-line options.

Options must be known before pytest picks its root directory, or ``--run-dir runs/x`` is taken for
a test path; a conftest under quality/ registers too late for that, an installed plugin does not.
"""

from .publishing.gate import MARKERS, QUALITY_DIR

POLICY = QUALITY_DIR / "policy.yaml"


def pytest_addoption(parser):
    group = parser.getgroup("repotune", "repotune governance gate")
    group.addoption("--run-dir", default="runs/latest", help="run directory the governance gate checks (default: runs/latest)")
    group.addoption("--policy", default=str(POLICY), help="governance thresholds (default: quality/policy.yaml)")


def pytest_configure(config):
    """Hypothesis profiles (astropy's habit), chosen by HYPOTHESIS_PROFILE: `dev` (default) is quick,
    `ci` is reproducible (derandomize), `fuzz` digs deep. No deadline: the tokenizer's first call
    in a process is slow, and a wall-clock deadline would flake on 2 cores. The gate's markers are
    registered here too, so the suites run where no pyproject.toml lists them (a wheel install)."""
    import os

    config.addinivalue_line("markers", "governance: a governance check over a run directory")
    for marker in MARKERS:
        config.addinivalue_line("markers", f"{marker}: the gate's {marker} check (quality/test_{marker}.py)")

    try:
        from hypothesis import settings
    except ImportError:  # hypothesis is a test extra; the gate's property checks then fail on import
        return
    settings.register_profile("dev", max_examples=30, deadline=None)
    settings.register_profile("ci", derandomize=True, max_examples=50, deadline=None)
    settings.register_profile("fuzz", max_examples=2000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
