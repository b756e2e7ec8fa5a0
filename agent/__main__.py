"""``python -m agent`` is the ``prometheus-backend`` command."""

import sys

from agent.cli import main

sys.exit(main())
