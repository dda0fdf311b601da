"""Root conftest: every kata test runs under the coach plugin (see coach/runtime/plugin.py), and
under a time limit that works on every platform, SIGALRM or not (see coach/runtime/timeouts.py)."""

pytest_plugins = ["coach.runtime.plugin", "coach.runtime.timeouts"]
