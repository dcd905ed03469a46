"""``python -m zoo.data.synth``: the same command as ``python -m zoo synth``."""
import sys

from .command import main

sys.exit(main())
