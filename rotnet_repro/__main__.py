import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while torch and the rest load: nothing has started yet, no traceback
    print("interrupted while starting: nothing was done; run the same command again", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
