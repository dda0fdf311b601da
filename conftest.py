"""Root conftest: every kata test runs under the coach plugin (see coach/runtime/plugin.py), and
under a time limit that works on every platform, SIGALRM or not (see coach/runtime/timeouts.py).

A `pytest` started from a Python without torch (not the course's .venv) stops here with one
line that says what to run instead, rather than a traceback ending in "No module named torch".
"""

import importlib.util
import sys

if importlib.util.find_spec("torch") is None:
    raise SystemExit(
        f"torch is not installed for this Python ({sys.executable}). Run `make test`, or use "
        f"the course's Python: `source .venv/bin/activate` (Windows: `.venv\\Scripts\\activate`), "
        f"then `pytest` again."
    )

pytest_plugins = ["coach.runtime.plugin", "coach.runtime.timeouts"]
