"""The selftests run coach commands in subprocesses: cold, as CI does, so that none of them
starts a coach server that outlives the tests. selftests/test_server.py turns it back on, in a
scratch copy of the project, and stops what it starts."""

import os

os.environ["COACH_NO_SERVER"] = "1"
