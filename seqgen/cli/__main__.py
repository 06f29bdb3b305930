"""``python -m seqgen.cli``: the same as ``seqgen``."""
import sys

from seqgen.cli import main

sys.exit(main())
