"""gankit asks OpenMP's waiting threads to sleep (issue 34 §4.1), unless the user chose."""

import os
import subprocess
import sys

CODE = "import os, gankit; print(os.environ['OMP_WAIT_POLICY'])"


def _policy(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_import_sets_a_passive_wait_policy_and_keeps_the_users():
    assert _policy(None) == "PASSIVE"
    assert _policy("ACTIVE") == "ACTIVE"
