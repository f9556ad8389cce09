"""`python -m kerasafe …`: the same command line as the `kerasafe` script."""

import sys

from kerasafe.cli import main

sys.exit(main())
