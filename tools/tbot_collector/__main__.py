"""``python -m tbot_collector``: what ``python3 scripts/dev collector`` runs."""

import sys

from tbot_collector.cli import main

sys.exit(main())
