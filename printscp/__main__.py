import sys

from printscp.app.launch import main

sys.exit(main())
