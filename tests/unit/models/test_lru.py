"""The loaders' file caches are bounded LRUs."""
from __future__ import annotations

import os
import zipfile

import pytest

from roiclass.server.models import emd, onnx_info
from roiclass.server.models.lru import LruCache

from .model_factory import make_classifier


def test_the_least_recently_used_entry_goes_first():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # b is now the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    with pytest.raises(ValueError):
        LruCache(0)


def test_module_caches_are_bounded():
    for cache in (onnx_info._graphs, onnx_info._probes, emd._extracted):
        assert isinstance(cache, LruCache) and cache.maxsize == 256


def test_a_replaced_onnx_file_is_read_again_and_the_cache_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_info, "_graphs", LruCache(2))
    path = make_classifier(tmp_path / "m.onnx")
    for k in range(4):
        os.utime(path, ns=(10**9 * k, 10**9 * k))  # a new stamp: as if the file were replaced
        assert onnx_info.onnx_info(path).layout == "NCHW"
    assert len(onnx_info._graphs) == 2


def test_extracted_packages_stay_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(emd, "_extracted", LruCache(2))
    pkg = tmp_path / "m.dlpk"
    with zipfile.ZipFile(pkg, "w") as zf:
        zf.writestr("m.emd", "{}")
    for k in range(4):
        os.utime(pkg, ns=(10**9 * k, 10**9 * k))
        assert (emd.extract_dlpk(pkg, tmp_path / "cache") / "m.emd").is_file()
    assert len(emd._extracted) == 2
