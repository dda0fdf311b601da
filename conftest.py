"""Root conftest: every kata test runs under the coach plugin (see coach/plugin.py)."""

pytest_plugins = ["coach.plugin"]
