# cython: language_level=3
"""Separable area averaging for ROIs at 0 or 180 degrees shrunk more than 2x.

Per output row: a vertical pass sums the row's source rows (weighted by
their covered height) into a float row buffer on the stack, reading each
source row once and contiguously; a horizontal pass then averages each
output pixel's columns from that buffer. Cells are cut at source pixel
edges, so the result is exact area averaging (INTER_AREA). An axis that is
not shrunk more than 2x gets the bilinear sample at the footprint centre
(two cells), as in area_row. Rows whose footprint leaves the image go
to area_row (border rules); so do footprints wider than the buffer.
"""
from libc.math cimport floor, ceil, fabs

from _interp cimport src_t, dst_t
from _params cimport Params, store
from _simd cimport vacc

cdef enum:
    # source pixels per tile of the row buffer (x 4 channels x 4 bytes = 16 KB)
    SEP_TILE = 1024


cdef inline void sep_span(double c, double s, int area, int* first, int* last) noexcept nogil:
    """Source indices [first, last] of the cells of a footprint centred on c
    (continuous coordinates), s source pixels long."""
    cdef double lo, hi, xi
    if area:
        lo = c - 0.5 * s
        hi = c + 0.5 * s
        first[0] = <int>floor(lo)
        last[0] = max(<int>ceil(hi) - 1, first[0])
    else:
        xi = floor(c - 0.5)  # index coordinates
        first[0] = <int>xi
        last[0] = first[0] + 1


cdef inline float sep_weight(double c, double s, double inv_s, int area, int i) noexcept nogil:
    """Weight of source index i in the footprint (area: covered length / s;
    otherwise the bilinear weight of the centre sample)."""
    cdef double lo, hi, f
    if area:
        lo = max(c - 0.5 * s, <double>i)
        hi = min(c + 0.5 * s, i + 1.0)
        return <float>((hi - lo) * inv_s) if hi > lo else 0.0
    f = (c - 0.5) - floor(c - 0.5)
    return <float>(1.0 - f) if i == <int>floor(c - 0.5) else <float>f


cdef inline void sep_vertical(const src_t* img, Py_ssize_t stride, int y0, int y1, double cy,
                              double s2, double inv2, int area2, int xa, int n, int C,
                              float* buf) noexcept nogil:
    """buf[k] = sum over source rows y0..y1 of w_y * row_y[xa * C + k], k < n * C.
    Two rows per sweep: half the buffer traffic."""
    cdef int y = y0, m = n * C
    cdef float w0, w1
    cdef const src_t* r0
    while y <= y1:
        w0 = sep_weight(cy, s2, inv2, area2, y)
        r0 = <const src_t*>(<const char*>img + y * stride) + xa * C
        if y + 1 <= y1:
            w1 = sep_weight(cy, s2, inv2, area2, y + 1)
            vacc(r0, <const src_t*>(<const char*>r0 + stride), w0, w1, buf, m, y > y0)
            y += 2
        else:
            vacc(r0, NULL, w0, 0.0, buf, m, y > y0)
            y += 1


cdef inline void sep_columns(const float* b, int n, int C, float wf, float wl, float w,
                             float* acc) noexcept nogil:
    """acc[c] = wf b[c] + wl b[n C + c] + w * (sum of the columns between):
    one pass over the columns with a register per channel (C is a literal
    at the call site, so the channel tests fold away)."""
    cdef float t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0
    cdef const float* q
    cdef int i
    for i in range(1, n):
        q = b + i * C
        t0 = t0 + q[0]
        if C > 1:
            t1 = t1 + q[1]
            t2 = t2 + q[2]
        if C > 3:
            t3 = t3 + q[3]
    q = b + n * C
    acc[0] = (wf * b[0] + wl * q[0]) + w * t0
    if C > 1:
        acc[1] = (wf * b[1] + wl * q[1]) + w * t1
        acc[2] = (wf * b[2] + wl * q[2]) + w * t2
    if C > 3:
        acc[3] = (wf * b[3] + wl * q[3]) + w * t3


cdef inline int sep_area_row(const src_t* img, dst_t* dst, const Params* P, const double* A,
                             const int* box, double s1, double s2, int area1, int area2, int v,
                             Py_ssize_t cstride, Py_ssize_t pstride, int C) noexcept nogil:
    """One output row (content box only) of a 0/180 degree ROI; returns 0,
    having written nothing, when the row needs area_row instead. C is a
    literal at the call site."""
    cdef float buf[SEP_TILE * 4]
    cdef float acc[4]
    cdef double inv1 = 1.0 / s1, inv2 = 1.0 / s2
    # footprint centres (continuous coordinates): x = A0 (u + .5) + A2, y = A4 (v + .5) + A5
    cdef double cy = A[4] * (v + 0.5) + A[5], cx
    cdef int y0, y1, xa, xb, fa, la, fb, lb, u, ut, ue, per, first, last
    cdef float w = <float>inv1, wf, wl
    if A[1] != 0.0 or A[3] != 0.0 or A[0] == 0.0 or A[4] == 0.0:
        return 0
    if s1 + 4.0 > SEP_TILE:
        return 0
    sep_span(cy, s2, area2, &y0, &y1)
    if y0 < 0 or y1 > P.H - 1:
        return 0
    # the x spans are monotonic in u: the row's ends bound them all
    sep_span(A[0] * (box[0] + 0.5) + A[2], s1, area1, &fa, &la)
    sep_span(A[0] * (box[2] - 0.5) + A[2], s1, area1, &fb, &lb)
    if min(fa, fb) < 0 or max(la, lb) > P.W - 1:
        return 0
    per = max(1, <int>((SEP_TILE - 4) * inv1))
    ut = box[0]
    while ut < box[2]:
        ue = min(box[2], ut + per)
        sep_span(A[0] * (ut + 0.5) + A[2], s1, area1, &fa, &la)
        sep_span(A[0] * (ue - 0.5) + A[2], s1, area1, &fb, &lb)
        xa = min(fa, fb)
        xb = min(max(la, lb) + 1, xa + <int>SEP_TILE)
        sep_vertical(img, P.stride, y0, y1, cy, s2, inv2, area2, xa, xb - xa, C, buf)
        for u in range(ut, ue):
            cx = A[0] * (u + 0.5) + A[2]
            sep_span(cx, s1, area1, &first, &last)
            first = max(first, xa)
            last = min(last, xb - 1)
            # the end cells are weighted; the ones between all weigh 1 / s1
            wf = sep_weight(cx, s1, inv1, area1, first)
            wl = sep_weight(cx, s1, inv1, area1, last) if last > first else 0.0
            sep_columns(buf + (first - xa) * C, last - first, C, wf, wl, w, acc)
            store(P, dst + u * pstride, cstride, acc)
        ut = ue
    return 1
