import sys

from teleport_auth.main import main

raise SystemExit(main(sys.argv[1:]))
