"""Start ``streamlit`` like its own command does, with the test pace applied first.

The browser tests launch the server as ``python tests/e2e/serve.py run streamlit_app.py ...``
so that ``FMNIST_TEST_PACE`` (see tests/pace.py) reaches the server's training loop too.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from streamlit.web.cli import main  # noqa: E402

from tests import pace  # noqa: E402

if __name__ == "__main__":
    pace.apply()
    sys.exit(main())
