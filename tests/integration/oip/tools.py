"""Client venvs of the Open Inference Protocol tests: tritonclient (and KServe's client)
pin protobuf < 7, so their scripts run in venvs of their own (`make test` makes the
tritonclient one and exports ROICLASS_TRITONCLIENT), as a user's environment would be."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def tool_python(variable: str, pattern: str, what: str) -> Path:
    """The python of a tool venv: $variable (a venv folder), else the newest .venv-tools/<pattern>.
    Missing: a failure in CI (`make test` installs it), locally a skip saying so."""
    folder = os.environ.get(variable)
    if folder:
        venv = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    else:
        found = sorted(ROOT.glob(f".venv-tools/{pattern}"))
        venv = found[-1] if found else None
    python = venv / "bin" / "python" if venv is not None else None
    if python is None or not python.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} missing in CI: `make test` installs it ({variable})")
        pytest.skip(f"{what} not installed: `make test` puts it in .venv-tools/ ({variable})")
    return python


def tritonclient_python() -> Path:
    return tool_python("ROICLASS_TRITONCLIENT", "tritonclient-*", "tritonclient")


def run_script(python: Path, script: str, *args, timeout: float = 240) -> dict:
    """Runs HERE/script with that python; the script prints one JSON object last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([str(python), str(HERE / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_inputs(folder: Path, image: np.ndarray, rois: np.ndarray, seed: int) -> np.ndarray:
    """What the tritonclient check scripts read: chelsea.npy, rois.npy, chelsea.png and
    tensors.npy (two random inputs of the model's own shape, returned)."""
    from tests.conftest import png_bytes

    np.save(folder / "chelsea.npy", image)
    np.save(folder / "rois.npy", rois)
    (folder / "chelsea.png").write_bytes(png_bytes(image))
    tensors = np.random.default_rng(seed).normal(size=(2, 3, 224, 224)).astype(np.float32)
    np.save(folder / "tensors.npy", tensors)
    return tensors
