"""Model files sent with a load request (server/models/uploads.py): names checked, nothing
written outside the model's folder, a new upload replaces the old files."""
from __future__ import annotations

import pytest

from roiclass.server.errors import InvalidArgument
from roiclass.server.models.uploads import UploadFolder, check_upload


@pytest.mark.parametrize("path", ["../evil.onnx", "/etc/passwd", "a/../../b", ".hidden", "a\\b", "", "a//b"])
def test_paths_outside_the_model_folder_are_refused(path):
    with pytest.raises(InvalidArgument) as err:
        check_upload("m", {"m.emd": b"{}", path: b"x"})
    assert err.value.violations[0].field == f"parameters.file:{path}"


@pytest.mark.parametrize("name", ["../m", "a/b", ".m", ""])
def test_model_names_are_checked(name):
    with pytest.raises(InvalidArgument) as err:
        check_upload(name, {"config.toml": b""})
    assert err.value.violations[0].field == "model_name"


def test_the_entry_point_is_named_after_the_model():
    assert check_upload("m", {"m.emd": b"{}", "m.onnx": b""}) == "m.emd"
    assert check_upload("m", {"m.dlpk": b""}) == "m.dlpk"
    assert check_upload("m", {"config.toml": b"", "1/model.onnx": b""}) == "config.toml"
    with pytest.raises(InvalidArgument, match="m.emd, m.dlpk, config.toml"):
        check_upload("m", {"other.emd": b"{}"})


def test_a_new_upload_replaces_the_files(tmp_path):
    folder = UploadFolder(tmp_path)
    first = folder.write("m", {"config.toml": b"a", "1/model.onnx": b"old", "classes.txt": b"x"})
    assert first == tmp_path / "m" and (first / "1" / "model.onnx").read_bytes() == b"old"
    assert folder.model_of(first) == "m" and folder.model_of(tmp_path.parent / "m") is None
    second = folder.write("m", {"m.emd": b"{}", "m.onnx": b"new"})
    assert second == tmp_path / "m" / "m.emd" and folder.model_of(second) == "m"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["m.emd", "m.onnx"]  # nothing left of the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left behind


def test_close_removes_only_a_folder_of_its_own(tmp_path):
    given = UploadFolder(tmp_path)
    given.write("m", {"config.toml": b""})
    given.close()
    assert (tmp_path / "m" / "config.toml").is_file()  # a folder it was given stays
    own = UploadFolder()
    path = own.write("m", {"config.toml": b""})
    own.close()
    assert not path.exists() and not path.parent.exists()
