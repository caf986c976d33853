# cython: language_level=3
"""The per-ROI mirror flag: rows v0..v1 of one ROI's output, already written
(and masked), reversed along the output's width axis in place. Swapping the
stored values keeps the mirrored output bit-exact equal to np.flip of the
unmirrored one, whatever path (separable, area, rotated, generic, letterbox)
wrote it."""
from _interp cimport dst_t
from _params cimport Params


cdef inline void _swap(dst_t* a, dst_t* b) noexcept nogil:
    cdef dst_t t = a[0]
    a[0] = b[0]
    b[0] = t


cdef inline void mirror_rows(dst_t* dst, const Params* P, int v0, int v1) noexcept nogil:
    """dst: the ROI's (C, H, W) or (H, W, C) output; rows [v0, v1) flipped."""
    cdef Py_ssize_t W = P.out_w, C = P.cout, i, k, c
    cdef int v
    cdef dst_t* row
    if P.nhwc:  # whole pixels (C values each) trade places
        for v in range(v0, v1):
            row = dst + v * W * C
            for i in range(W // 2):
                for k in range(C):
                    _swap(row + i * C + k, row + (W - 1 - i) * C + k)
        return
    for c in range(C):
        for v in range(v0, v1):
            row = dst + (c * P.out_h + v) * W
            for i in range(W // 2):
                _swap(row + i, row + W - 1 - i)
