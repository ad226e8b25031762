import sys

from pnc_pack.cli import main

sys.exit(main())
