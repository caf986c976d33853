"""The video tests' files: the 60-frame clip (chelsea, then coffee) and the
same frames as an image sequence."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.unit.client.video.clips import cat_then_coffee, write_video


@pytest.fixture(scope="package")
def clip_frames(chelsea, coffee):
    return cat_then_coffee(chelsea, coffee)


@pytest.fixture(scope="package")
def clip(tmp_path_factory, clip_frames):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", clip_frames)


@pytest.fixture(scope="package")
def sequence(tmp_path_factory, clip_frames):
    """frame1.png .. frame60.png (unpadded: natural order is not the string order)."""
    folder = tmp_path_factory.mktemp("sequence")
    for i, frame in enumerate(clip_frames):
        Image.fromarray(frame).save(folder / f"frame{i + 1}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder
