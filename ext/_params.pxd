# cython: language_level=3
"""Kernel parameters (one struct per call, on the caller's stack) and the
per-pixel store: channel map, normalization, float32/float16 output."""
from _interp cimport dst_t, float_to_half

cdef enum:
    MAX_IN_CHANNELS = 4    # luma mixes (wmat) read at most 4 source channels
    MAX_BANDS = 16         # source channels of a generic (N-band) image
    MAX_OUT_CHANNELS = 64


ctypedef struct Params:
    Py_ssize_t stride      # source row stride, bytes
    int H, W, C            # source size and channels
    int out_h, out_w, cout
    int nhwc
    int border
    int antialias
    float fill
    # out_k = (sum_c wmat[k][c] * sample_c - mean_k) * inv_std_k; when no
    # output channel is a luma mix (pick), out_k = (sample[cmap_k] - mean_k) * inv_std_k
    int pick
    int cmap[MAX_OUT_CHANNELS]
    float wmat[MAX_OUT_CHANNELS][MAX_IN_CHANNELS]
    float mean[MAX_OUT_CHANNELS]
    float inv_std[MAX_OUT_CHANNELS]
    # generic images (N bands, or float32 samples: _generic.pxd): the source
    # channels the output reads (the rest is never sampled)
    int generic
    int nneed
    int need[MAX_BANDS]
    # polygon masks (_mask.pxd): ROI n's edges, in output pixel coordinates,
    # are poly[4 * poly_off[n] .. 4 * poly_off[n + 1]); poly_off NULL = none
    const double* poly
    const Py_ssize_t* poly_off
    # per-ROI flags (_mirror.pxd): mirror[n] & 1 = ROI n's output flipped
    # along the width axis; NULL = no ROI is
    const unsigned char* mirror


cdef inline void put(dst_t* dst, float value) noexcept nogil:
    if dst_t is float:
        dst[0] = value
    else:
        dst[0] = float_to_half(value)


cdef inline float mix(const Params* P, int k, const float* s) noexcept nogil:
    """Output channel k's sample, before normalization."""
    cdef float acc
    if P.pick:
        return s[P.cmap[k]]
    acc = P.wmat[k][0] * s[0]
    if P.C > 1:
        acc = acc + P.wmat[k][1] * s[1] + P.wmat[k][2] * s[2]
        if P.C > 3:
            acc = acc + P.wmat[k][3] * s[3]
    return acc


cdef inline void store(const Params* P, dst_t* dst, Py_ssize_t cstride, const float* s) noexcept nogil:
    """All output channels of one pixel from its C_in samples s."""
    cdef int k
    for k in range(P.cout):
        put(dst + k * cstride, (mix(P, k, s) - P.mean[k]) * P.inv_std[k])
