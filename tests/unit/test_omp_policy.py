"""gankit shortens OpenMP's spin before waiting threads sleep (issue 34 §4.1), unless the
user chose a wait policy or a spin count."""

import os
import subprocess
import sys

CODE = ("import os, gankit; print(os.environ.get('GOMP_SPINCOUNT'), "
        "os.environ.get('OMP_WAIT_POLICY'))")


def _env_after_import(**env_values):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_values)
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, check=True).stdout.split()


def test_import_sets_a_short_spin_and_keeps_the_users_choice():
    assert _env_after_import() == ["3000", "None"]
    assert _env_after_import(OMP_WAIT_POLICY="PASSIVE") == ["None", "PASSIVE"]
    assert _env_after_import(GOMP_SPINCOUNT="50") == ["50", "None"]
