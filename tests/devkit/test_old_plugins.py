"""Plugins written against wmkit 0.1's module paths still load and pass their own contract
checks. tests/fixtures/old_plugins holds one plugin of each kind exactly as ``wmkit
new-plugin`` wrote it before the package was split (it imports ``wmkit.protocols``,
``wmkit.testing``, ``wmkit.plugins``, ``wmkit.errors`` and ``wmkit.optim_state``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

OLD = Path(__file__).parents[1] / "fixtures" / "old_plugins"


def test_old_plugins_pass_their_own_tests(tmp_path):
    # A copy, so that pytest does not pick up this suite's conftest.py.
    shutil.copytree(OLD, tmp_path / "old", ignore=shutil.ignore_patterns("__pycache__"))
    folders = sorted((tmp_path / "old").iterdir())
    assert [f.name for f in folders] == [
        "old-controller",
        "old-env",
        "old-memory",
        "old-optimizer",
        "old-vision",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(f) for f in folders),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "always::DeprecationWarning",
            *(str(f / "tests") for f in folders),
        ],
        cwd=tmp_path / "old",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "13 passed" in result.stdout, result.stdout
    # They imported through the 0.1 paths, and were told where those moved.
    assert "wmkit.protocols moved to wmkit.core.protocols" in result.stdout
