"""``python -m openspine`` = the ``openspine`` command."""

import sys

from .cli import main

sys.exit(main())
