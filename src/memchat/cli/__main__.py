"""``python -m memchat.cli`` runs the command line."""

import sys

from memchat.cli.main import main

sys.exit(main())
