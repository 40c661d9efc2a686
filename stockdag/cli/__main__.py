"""``python -m stockdag.cli``: the ``stockdag`` command."""
import sys

from . import main

sys.exit(main())
