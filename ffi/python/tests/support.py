"""What the tests share. Importing it puts this checkout's package first on
sys.path (set NANOBREAKER_TEST_INSTALLED=1 to test an installed one).

The library: NANOBREAKER_LIB, as for the package (tests/ffi_python.rs sets
it to the library it builds).
"""

import os
import sys

PACKAGE_HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # ffi/python
REPO = os.path.dirname(os.path.dirname(PACKAGE_HOME))
EXAMPLES = os.path.join(PACKAGE_HOME, "examples")

if not os.environ.get("NANOBREAKER_TEST_INSTALLED") and sys.path[:1] != [PACKAGE_HOME]:
    sys.path.insert(0, PACKAGE_HOME)

import nanobreaker as nb  # noqa: E402 (after the path is set)

__all__ = ["EXAMPLES", "PACKAGE_HOME", "REPO", "nb"]
