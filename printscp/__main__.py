import sys

from printscp.app.cli.main import main

sys.exit(main())
