"""Allow `python -m mmioscan`."""

import sys

from mmioscan.cli import main

sys.exit(main(sys.argv[1:]))
