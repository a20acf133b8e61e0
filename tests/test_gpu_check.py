"""scripts/gpu_check.sh without CUDA: one line saying so, exit status 0 (the GPU runs need a CUDA machine; the CPU
reference half runs anywhere with `--cpu-only`, docs/gpu-check.md).

    .venv/bin/python -m pytest tests/test_gpu_check.py -q
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_cuda_the_gpu_check_says_so_in_one_line_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}   # no GPU visible, also on a machine that has one
    env.pop("GPU_CHECK_CPU_ONLY", None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device on this machine"), proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_gpu_check_refuses_unknown_arguments():
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--gpu"], cwd=REPO, text=True,
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and "unknown argument --gpu" in proc.stderr
