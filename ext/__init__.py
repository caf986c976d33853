"""roiclass.ext: the Cython preprocessing kernel (see ext/README.md)."""
from roiclass.ext._preprocess import (
    LUMA_BGR,
    LUMA_RGB,
    default_channel_map,
    have_openmp,
    max_threads,
    preprocess_rois,
    roi_affine,
    roi_content_box,
    warp_affine,
)

__all__ = [
    "HAVE_OPENMP",
    "LUMA_BGR",
    "LUMA_RGB",
    "default_channel_map",
    "max_threads",
    "preprocess_rois",
    "roi_affine",
    "roi_content_box",
    "warp_affine",
]

# True when built with OpenMP; without it num_threads is ignored (one thread).
HAVE_OPENMP = have_openmp()
