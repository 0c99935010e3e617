"""``python -m attribution.ihc_api``: the server alone, without loading the full CLI."""

import sys

from attribution.ihc_api.command import main

sys.exit(main())
