"""`python -m ganbridge`: the same as the `ganbridge` command."""

import sys

from ganbridge.cli.main import main

sys.exit(main())
