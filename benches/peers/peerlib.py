"""What the peer scripts share: installing a peer from its registry and finding the reference set.

Peers are installed with pip from PyPI at run time (never vendored, never built from source here).
"""

import os
import subprocess
import sys


def ensure(pkg, module):
    """Imports `module`, pip-installing `pkg` first when it is missing."""
    try:
        return __import__(module)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", pkg])
        return __import__(module)


def reference_dir(sub):
    """The `sub` folder of the reference set: $CLAIMLAB_REFERENCE_DIR, the copy committed in
    tests/reference, or shared/reference beside the repository (as claimlab-testkit looks)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in [os.environ.get("CLAIMLAB_REFERENCE_DIR"),
                 os.path.join(here, "..", "..", "tests", "reference"),
                 os.path.join(here, "..", "..", "..", "shared", "reference"),
                 os.path.join(here, "..", "..", "shared", "reference")]:
        if cand and os.path.isdir(os.path.join(cand, sub)):
            return os.path.join(cand, sub)
    sys.exit(f"cannot find tests/reference/{sub} (set CLAIMLAB_REFERENCE_DIR)")
