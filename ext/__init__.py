"""roiclass.ext: the Cython preprocessing kernel (see ext/README.md)."""
from roiclass.ext import _preprocess as _baseline


def _pick_build():
    """The x86-64-v3 (AVX2 + FMA) build where this CPU has both and it was
    built, else the baseline one. Same results within float rounding
    (tests/unit/ext/test_ext_builds.py)."""
    if _baseline.cpu_has_avx2_fma():
        try:
            from roiclass.ext import _preprocess_avx2
        except ImportError:  # not built (not x86-64, ROICLASS_ISA=baseline, ASan build)
            return _baseline
        return _preprocess_avx2
    return _baseline


_kernel = _pick_build()
LUMA_BGR = _kernel.LUMA_BGR
LUMA_RGB = _kernel.LUMA_RGB
default_channel_map = _kernel.default_channel_map
max_threads = _kernel.max_threads
preprocess_batch = _kernel.preprocess_batch
preprocess_rois = _kernel.preprocess_rois
roi_affine = _kernel.roi_affine
roi_content_box = _kernel.roi_content_box
warp_affine = _kernel.warp_affine

__all__ = [
    "HAVE_OPENMP",
    "KERNEL_ISA",
    "LUMA_BGR",
    "LUMA_RGB",
    "default_channel_map",
    "max_threads",
    "preprocess_batch",
    "preprocess_rois",
    "roi_affine",
    "roi_content_box",
    "warp_affine",
]

# True when built with OpenMP; without it num_threads is ignored (one thread).
HAVE_OPENMP = _kernel.have_openmp()
# The instruction set of the build in use ("x86-64-v3", "x86-64-v2", ...).
KERNEL_ISA = _kernel.build_isa()
