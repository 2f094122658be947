"""`python -m fencing hold|inspect`: see `fencing.cli`."""

import sys

from fencing.cli import main

sys.exit(main())
