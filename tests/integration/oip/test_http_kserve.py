"""KServe's Python REST client (InferenceRESTClient, protocol v2; its own venv) against
roiclass's REST port: readiness, and infer (binary and JSON tensors) bit-identical to v1."""
from __future__ import annotations

import numpy as np
import pytest

from tests.integration.oip.http_helpers import MODEL, base_url, start, v1_probabilities, v1_request
from tests.integration.oip.tools import run_script, tool_python
from tests.integration.requests import raw_image

ROIS = np.array([[60, 10, 280, 260, 0], [100, 40, 200, 180, 12.5]], np.float32)


@pytest.fixture(scope="module")
def served():
    srv = start()
    yield srv
    srv.stop()


def test_kserve_rest_client_infers_as_v1_classifies(served, chelsea, tmp_path):
    python = tool_python("ROICLASS_KSERVE", "kserve-*", "the KServe client")
    np.save(tmp_path / "chelsea.npy", chelsea)
    np.save(tmp_path / "rois.npy", ROIS)
    summary = run_script(python, "kserve_http_check.py", base_url(served), MODEL, tmp_path)
    assert summary["live"] and summary["ready"] and summary["model_ready"]
    expected = v1_probabilities(served, v1_request(raw_image(chelsea), ROIS.tolist()))
    with np.load(tmp_path / "results.npz") as got:
        for binary in (True, False):
            assert summary[f"binary={binary}"] == {"name": "PROBABILITIES", "datatype": "FP32", "shape": [2, 1000],
                                                   "id": f"kserve-{binary}"}
            np.testing.assert_array_equal(got[f"binary_{binary}"], expected)
