# cython: language_level=3
"""The per-ROI band kernel: sample, map channels, normalize, store.

One call fills output rows [v0, v1) of one ROI; the batch entry point in
_preprocess.pyx spreads (ROI, band) units over threads. No allocation here.
"""
from libc.math cimport floor, hypot, fabs
from libc.stdint cimport uint8_t, uint16_t

from _interp cimport (src_t, dst_t, bilinear, float_to_half, clampc)

cdef enum:
    MAX_IN_CHANNELS = 4
    MAX_OUT_CHANNELS = 64
    # Beyond this many source pixels per output pixel and axis, the footprint
    # is supersampled with this many evenly spaced taps instead of one per pixel.
    MAX_CELLS = 64


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


cdef inline void store(const Params* P, dst_t* dst, Py_ssize_t cstride, const float* s) noexcept nogil:
    cdef int k
    cdef float acc
    if P.pick:
        for k in range(P.cout):
            acc = (s[P.cmap[k]] - P.mean[k]) * P.inv_std[k]
            if dst_t is float:
                dst[k * cstride] = acc
            else:
                dst[k * cstride] = float_to_half(acc)
        return
    for k in range(P.cout):
        acc = P.wmat[k][0] * s[0]
        if P.C > 1:
            acc = acc + P.wmat[k][1] * s[1] + P.wmat[k][2] * s[2]
            if P.C > 3:
                acc = acc + P.wmat[k][3] * s[3]
        acc = (acc - P.mean[k]) * P.inv_std[k]
        if dst_t is float:
            dst[k * cstride] = acc
        else:
            dst[k * cstride] = float_to_half(acc)


cdef inline int pair_taps(int n, double* pos, double* wgt) noexcept nogil:
    """Merge neighbouring cells into one linear tap placed between them
    (w_i p_i + w_j p_j = (w_i + w_j) lerp(p_i, p_j, w_j / (w_i + w_j))):
    exact for axis-aligned ROIs, and a quarter of the taps in 2-D."""
    cdef int i, m = 0
    cdef double w
    i = 0
    while i < n:
        if i + 1 < n:
            w = wgt[i] + wgt[i + 1]
            pos[m] = pos[i] + (pos[i + 1] - pos[i]) * (wgt[i + 1] / w)
            wgt[m] = w
            i += 2
        else:
            pos[m] = pos[i]
            wgt[m] = wgt[i]
            i += 1
        m += 1
    return m


cdef inline int cells(double lo, double length, int area, double* pos, double* wgt) noexcept nogil:
    """Split the footprint [lo, lo+length] of one output pixel along one axis
    into cells at integer coordinates (source pixel edges when the axis is
    aligned with the image), one tap per cell at the pixel centre, weighted
    by the covered length: exact INTER_AREA for axis-aligned ROIs."""
    cdef int n = 0, i
    cdef double hi, end = lo + length, edge
    if not area:
        pos[0] = lo + 0.5 * length
        wgt[0] = 1.0
        return 1
    if length > MAX_CELLS:
        for i in range(MAX_CELLS):
            pos[i] = lo + (i + 0.5) * length / MAX_CELLS
            wgt[i] = 1.0 / MAX_CELLS
        return pair_taps(MAX_CELLS, pos, wgt)
    while lo < end and n < MAX_CELLS + 2:
        edge = floor(lo)
        hi = edge + 1.0
        if hi > end:
            hi = end
        pos[n] = edge + 0.5
        wgt[n] = (hi - lo) / length
        n += 1
        lo = hi
    return pair_taps(n, pos, wgt)


cdef inline void area_sample(const src_t* img, const Params* P, const double* A,
                             double s1, double s2, int area1, int area2,
                             int u, int v, float* out) noexcept nogil:
    """Weighted taps over the footprint of output pixel (u, v), in the ROI
    frame (e1, e2 = unit output axes on the image; A is orthogonal)."""
    cdef double e1x = A[0] / s1, e1y = A[3] / s1, e2x = A[1] / s2, e2y = A[4] / s2
    cdef double o1 = A[2] * e1x + A[5] * e1y, o2 = A[2] * e2x + A[5] * e2y
    cdef double p1[MAX_CELLS + 2]
    cdef double w1[MAX_CELLS + 2]
    cdef double p2[MAX_CELLS + 2]
    cdef double w2[MAX_CELLS + 2]
    cdef float tap[4]
    cdef float acc[4]
    cdef int n1, n2, i, j, c
    cdef float w
    n1 = cells(u * s1 + o1, s1, area1, p1, w1)
    n2 = cells(v * s2 + o2, s2, area2, p2, w2)
    for c in range(P.C):
        acc[c] = 0.0
    for j in range(n2):
        for i in range(n1):
            bilinear(img, P.stride, P.H, P.W, P.C,
                     p1[i] * e1x + p2[j] * e2x - 0.5, p1[i] * e1y + p2[j] * e2y - 0.5,
                     P.border, P.fill, tap)
            w = <float>(w1[i] * w2[j])
            for c in range(P.C):
                acc[c] += w * tap[c]
    for c in range(P.C):
        out[c] = acc[c]


cdef inline void span(double x0, double a, double hi, double* ua, double* ub) noexcept nogil:
    """Narrow [ua, ub] to the u where 0 <= x0 + a u <= hi."""
    if a > 1e-12:
        ua[0] = max(ua[0], -x0 / a)
        ub[0] = min(ub[0], (hi - x0) / a)
    elif a < -1e-12:
        ua[0] = max(ua[0], (hi - x0) / a)
        ub[0] = min(ub[0], -x0 / a)
    elif not (0.0 <= x0 <= hi):
        ub[0] = -1.0


cdef inline int inside(const Params* P, double x, double y) noexcept nogil:
    return 0.0 <= x and x < P.W - 1 and 0.0 <= y and y < P.H - 1


cdef inline void bilinear_row(const src_t* img, dst_t* dst, const Params* P, const double* A,
                              const int* box, double bx, double by, Py_ssize_t cstride,
                              Py_ssize_t pstride, int C) noexcept nogil:
    """One output row inside the content box. C is a literal at every call
    site so that the compiler specializes the channel loops."""
    cdef int u, ua, ub, ix, iy, c
    cdef double x, y, lo = box[0], hi = box[2] - 1, a0 = A[0], a3 = A[3]
    cdef float fx, fy, t, b
    cdef float s[4]
    cdef const src_t* p0
    cdef const src_t* p1
    cdef Py_ssize_t stride = P.stride
    # the span where all four taps are inside: no border checks there
    if P.W >= 2 and P.H >= 2:
        span(bx, a0, P.W - 1.000001, &lo, &hi)
        span(by, a3, P.H - 1.000001, &lo, &hi)
    else:
        hi = -1.0
    if hi >= lo:
        ua = <int>clampc(floor(lo)) + 1
        ub = <int>clampc(floor(hi))
        ua = max(ua, box[0])
        ub = min(ub, box[2] - 1)
        while ua <= ub and not inside(P, bx + a0 * ua, by + a3 * ua):
            ua += 1
        while ub >= ua and not inside(P, bx + a0 * ub, by + a3 * ub):
            ub -= 1
        ub += 1
    else:
        ua = box[0]
        ub = box[0]
    for u in range(box[0], ua):
        bilinear(img, stride, P.H, P.W, C, bx + a0 * u, by + a3 * u, P.border, P.fill, s)
        store(P, dst + u * pstride, cstride, s)
    for u in range(ua, ub):
        x = bx + a0 * u
        y = by + a3 * u
        # x, y >= 0 here, so truncation is floor; the clamps only guard memory
        ix = min(max(<int>x, 0), P.W - 2)
        iy = min(max(<int>y, 0), P.H - 2)
        fx = <float>(x - ix)
        fy = <float>(y - iy)
        p0 = <const src_t*>(<const char*>img + iy * stride) + ix * C
        p1 = <const src_t*>(<const char*>img + (iy + 1) * stride) + ix * C
        for c in range(C):
            t = p0[c] + fx * (<float>p0[c + C] - <float>p0[c])
            b = p1[c] + fx * (<float>p1[c + C] - <float>p1[c])
            s[c] = t + fy * (b - t)
        store(P, dst + u * pstride, cstride, s)
    for u in range(max(ua, ub), box[2]):
        bilinear(img, stride, P.H, P.W, C, bx + a0 * u, by + a3 * u, P.border, P.fill, s)
        store(P, dst + u * pstride, cstride, s)


cdef inline void warp_band(const src_t* img, dst_t* out, const Params* P,
                           const double* A, const int* box, int v0, int v1) noexcept nogil:
    """Rows [v0, v1) of one ROI. A maps output pixel centres to continuous
    source coordinates; out points at this ROI's slice of the batch."""
    cdef int u, v, c
    cdef float s[4]
    cdef float f[4]
    cdef double s1 = hypot(A[0], A[3]), s2 = hypot(A[1], A[4])
    cdef int area1 = 0, area2 = 0
    cdef Py_ssize_t cstride, pstride
    # index-convention offsets: x_idx = A0 u + A1 v + (A2 + (A0 + A1)/2 - 1/2)
    cdef double bx = A[2] + 0.5 * (A[0] + A[1]) - 0.5
    cdef double by = A[5] + 0.5 * (A[3] + A[4]) - 0.5
    cdef dst_t* dst
    if P.antialias and fabs(A[0] * A[1] + A[3] * A[4]) <= 1e-9 * s1 * s2:
        area1 = s1 > 2.0
        area2 = s2 > 2.0
    if P.nhwc:
        cstride = 1
        pstride = P.cout
    else:
        cstride = <Py_ssize_t>P.out_h * P.out_w
        pstride = 1
    for c in range(4):
        f[c] = P.fill
    for v in range(v0, v1):
        dst = out + (<Py_ssize_t>v * P.out_w) * pstride
        if v < box[1] or v >= box[3]:
            for u in range(P.out_w):
                store(P, dst + u * pstride, cstride, f)
            continue
        for u in range(box[0]):
            store(P, dst + u * pstride, cstride, f)
        for u in range(box[2], P.out_w):
            store(P, dst + u * pstride, cstride, f)
        if area1 or area2:
            for u in range(box[0], box[2]):
                area_sample(img, P, A, s1, s2, area1, area2, u, v, s)
                store(P, dst + u * pstride, cstride, s)
        elif P.C == 3:
            bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 3)
        elif P.C == 1:
            bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 1)
        else:
            bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 4)
