"""A torchrun worker for test_distributed.py: ``gankit ARGS`` whose process of rank
``GANKIT_TEST_CRASH_RANK`` raises at generator step 2 (a failure point for the test only)."""

import os
import sys

from gankit import cli
from gankit.training.loop import Trainer

_g_step = Trainer.g_step


def g_step(self, log):
    if os.environ.get("RANK") == os.environ["GANKIT_TEST_CRASH_RANK"] and self.state.step == 2:
        raise RuntimeError("injected failure")
    return _g_step(self, log)


Trainer.g_step = g_step
sys.exit(cli.main(sys.argv[1:]))
