import sys

from skate.dashboard.server import main

sys.exit(main())
