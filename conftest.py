"""Root conftest: every kata test runs under the coach plugin (see coach/plugin.py), and under
a time limit that works on every platform, SIGALRM or not (see coach/timeouts.py)."""

pytest_plugins = ["coach.plugin", "coach.timeouts"]
