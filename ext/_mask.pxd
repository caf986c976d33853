# cython: language_level=3
"""Polygon masks: output samples whose source point lies outside the ROI's
polygon take the fill value (normalized like a pixel).

The edges come in output pixel coordinates (the polygon mapped through the
inverse of the ROI's affine map, done once per call before the GIL is
released), so each output row is a horizontal scanline at v + 0.5: an edge
crossing it at x toggles every sample u with u + 0.5 >= x (the half-open
rule of the even-odd test: an edge counts when exactly one end is above the
line). A row costs one pass over the edges plus one over its samples; no
sort, no allocation (the toggles of TILE samples at a time live on the stack).
"""
from libc.math cimport ceil

from _interp cimport dst_t
from _params cimport Params, put, mix, MAX_BANDS, MAX_OUT_CHANNELS

cdef enum:
    TILE = 2048


cdef inline void fill_run(dst_t* dst, const dst_t* value, int cout, int a, int b,
                          Py_ssize_t cstride, Py_ssize_t pstride) noexcept nogil:
    """Samples [a, b) of one output row take the normalized fill (per channel
    a constant run: contiguous in NCHW, which the compiler vectorizes)."""
    cdef int k, u
    cdef dst_t x
    cdef dst_t* d
    for k in range(cout):
        x = value[k]
        d = dst + k * cstride
        if pstride == 1:
            for u in range(a, b):
                d[u] = x
        else:
            for u in range(a, b):
                d[u * pstride] = x


cdef inline void mask_rows(dst_t* out, const Params* P, const double* edges, Py_ssize_t ne,
                           int v0, int v1) noexcept nogil:
    """Rows [v0, v1) of one ROI's output (out: its slice of the batch)."""
    cdef unsigned char flip[TILE + 1]
    cdef float f[MAX_BANDS]
    cdef dst_t value[MAX_OUT_CHANNELS]
    cdef Py_ssize_t cstride, pstride, e
    cdef int v, u, t0, t1, k, parity, run, start
    cdef double yc, x1, y1, x2, y2, xc
    cdef const double* q
    cdef dst_t* dst
    for k in range(MAX_BANDS):
        f[k] = P.fill
    for k in range(P.cout):  # what store() writes for a fill pixel
        put(&value[k], (mix(P, k, f) - P.mean[k]) * P.inv_std[k])
    if P.nhwc:
        cstride = 1
        pstride = P.cout
    else:
        cstride = <Py_ssize_t>P.out_h * P.out_w
        pstride = 1
    for v in range(v0, v1):
        yc = v + 0.5
        dst = out + (<Py_ssize_t>v * P.out_w) * pstride
        t0 = 0
        while t0 < P.out_w:
            t1 = min(t0 + <int>TILE, P.out_w)
            for k in range(t1 - t0 + 1):
                flip[k] = 0
            parity = 0
            for e in range(ne):
                q = edges + 4 * e
                y1 = q[1]
                y2 = q[3]
                if (y1 > yc) == (y2 > yc):
                    continue
                x1 = q[0]
                x2 = q[2]
                xc = x1 + (yc - y1) * (x2 - x1) / (y2 - y1) - 0.5
                # the first sample the crossing toggles is ceil(xc)
                if xc <= t0:
                    parity ^= 1
                elif xc <= t1 - 1:
                    flip[<int>ceil(xc) - t0] ^= 1
            run = parity
            start = -1  # the first outside sample of the current run
            for u in range(t0, t1):
                run ^= flip[u - t0]
                if not run:
                    if start < 0:
                        start = u
                elif start >= 0:
                    fill_run(dst, value, P.cout, start, u, cstride, pstride)
                    start = -1
            if start >= 0:
                fill_run(dst, value, P.cout, start, t1, cstride, pstride)
            t0 = t1
