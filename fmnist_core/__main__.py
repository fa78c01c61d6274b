"""``python -m fmnist_core``: the command line (see cli.py).

torch takes a second or more to import; a Ctrl-C meanwhile exits 130 with one line, not a
traceback (the package's ``__init__`` imports nothing heavy, so this is where it happens).
"""

import sys

try:
    from fmnist_core.cli import main
except KeyboardInterrupt:
    print("interrupted by Ctrl-C; nothing was saved", file=sys.stderr)
    sys.exit(130)

code = main()
from fmnist_core import distributed  # noqa: E402 - loaded by main() already

if distributed.joined():  # a torchrun rank: leave without finalizing (see end_process)
    distributed.end_process(code)
sys.exit(code)
