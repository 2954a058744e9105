"""The ``flannel`` executable's entry point: process-wide settings, then shell.main.

The cyclic garbage collector is off for the whole process, from before the
first import: a plugin process lives for one command, the commands build no
reference cycles (tests/test_shell_entry.py), so the collector's passes over
the freshly imported modules would only cost every start about 3 ms
(docs/performance.md).
"""

import gc

gc.disable()

from shell.main import main  # noqa: E402 - after gc.disable(), on purpose

__all__ = ["main"]
