"""``python -m salrank`` runs the command line."""

import sys

from salrank.cli import main

sys.exit(main())
