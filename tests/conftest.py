"""Shared test configuration. Fixtures for real servers come from lambdaflow's pytest plugin."""

import faulthandler
import sys

# A hung test dumps every thread's stack (pytest-timeout ends it; see pyproject's timeout).
faulthandler.enable(file=sys.stderr, all_threads=True)
