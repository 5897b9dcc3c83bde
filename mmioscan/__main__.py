"""Allow `python -m mmioscan`."""

import sys

from mmioscan.cli.main import main

# The guard matters: worker processes are spawned, and spawn imports this module again.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
