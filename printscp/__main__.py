import sys

from printscp.cli import main

sys.exit(main())
