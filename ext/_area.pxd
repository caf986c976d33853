# cython: language_level=3
"""Antialiased (area) sampling for ROIs shrunk more than 2x along an axis.

Footprint of an output pixel, in the ROI frame (unit output axes e1, e2 on
the image), split into cells at integer coordinates: for an axis-aligned
ROI these are source pixel edges and the result is exactly INTER_AREA.
Neighbouring cells are merged into one linear tap, a quarter of the taps.
"""
from libc.math cimport floor, ceil
from libc.stdint cimport int32_t

from _interp cimport src_t, dst_t, bilinear
from _params cimport Params, store
from _simd cimport bilerp4_acc, bilerp_planar, offsets_fit, rc_coords_local

cdef enum:
    # Beyond this many source pixels per output pixel and axis, the footprint
    # is supersampled with this many evenly spaced cells.
    MAX_CELLS = 64
    # taps per axis after pairing, and output pixels per chunk in area_row
    TAPS = MAX_CELLS // 2 + 2
    ACHUNK = 32
    # rotated ROIs: at most this many supersampling taps per axis
    MAX_SUPER = 32


cdef inline int pair_taps(int n, double* pos, double* wgt) noexcept nogil:
    """w_i p_i + w_j p_j = (w_i + w_j) lerp(p_i, p_j, w_j / (w_i + w_j)):
    exact when the cells are source pixels (axis-aligned ROI)."""
    cdef int i = 0, m = 0
    cdef double w
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


cdef inline int cells(double lo, double length, double inv_length, int area,
                      double* pos, double* wgt) noexcept nogil:
    """Taps (positions, weights summing to 1) over [lo, lo + length] on one axis."""
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
        hi = min(edge + 1.0, end)
        pos[n] = edge + 0.5  # the centre of the source pixel this cell lies in
        wgt[n] = (hi - lo) * inv_length
        n += 1
        lo = hi
    return pair_taps(n, pos, wgt)


cdef inline void area_row(const src_t* img, dst_t* dst, const Params* P, const double* A,
                          const int* box, double s1, double s2, int area1, int area2, int v,
                          Py_ssize_t cstride, Py_ssize_t pstride, int C) noexcept nogil:
    """One output row of an axis-aligned ROI (content box only); C is a
    literal at the call sites. Pixels go ACHUNK at a time, one tap row (j)
    at a time across the chunk, so that the source is read along lines."""
    cdef double e1x = A[0] / s1, e1y = A[3] / s1, e2x = A[1] / s2, e2y = A[4] / s2
    cdef double o1 = A[2] * e1x + A[5] * e1y, o2 = A[2] * e2x + A[5] * e2y
    cdef double p2[MAX_CELLS + 2]
    cdef double w2[MAX_CELLS + 2]
    # cells() writes up to MAX_CELLS + 2 raw cells into the last pixel's slot
    # before pairing them down to TAPS: room for that overflow
    cdef double tp[ACHUNK * TAPS + MAX_CELLS]
    cdef double tw[ACHUNK * TAPS + MAX_CELLS]
    cdef int cnt[ACHUNK]
    cdef float acc[ACHUNK][4]
    cdef double x, y, rx, ry, inv1 = 1.0 / s1
    cdef double xmax = P.W - 1 - (C == 3), ymax = P.H - 1
    cdef float tap[4]
    cdef int n1, n2, n, i, j, t, c, u0, ix, iy
    cdef float w, wj, fx, fy, a, b
    cdef const src_t* q0
    cdef const src_t* q1
    cdef Py_ssize_t stride = P.stride
    n2 = cells(v * s2 + o2, s2, 1.0 / s2, area2, p2, w2)
    u0 = box[0]
    while u0 < box[2]:
        n = min(<int>ACHUNK, box[2] - u0)
        for i in range(n):
            cnt[i] = cells((u0 + i) * s1 + o1, s1, inv1, area1, &tp[i * TAPS], &tw[i * TAPS])
            for c in range(4):
                acc[i][c] = 0.0
        for j in range(n2):
            rx = p2[j] * e2x - 0.5  # index coordinates: pixel centres at integers
            ry = p2[j] * e2y - 0.5
            wj = <float>w2[j]
            for i in range(n):
                for t in range(i * TAPS, i * TAPS + cnt[i]):
                    x = tp[t] * e1x + rx
                    y = tp[t] * e1y + ry
                    w = wj * <float>tw[t]
                    if 0.0 <= x < xmax and 0.0 <= y < ymax:
                        ix = <int>x
                        iy = <int>y
                        fx = <float>(x - ix)
                        fy = <float>(y - iy)
                        q0 = <const src_t*>(<const char*>img + iy * stride) + ix * C
                        q1 = <const src_t*>(<const char*>img + (iy + 1) * stride) + ix * C
                        if C == 1:
                            a = q0[0] + fx * (<float>q0[1] - <float>q0[0])
                            b = q1[0] + fx * (<float>q1[1] - <float>q1[0])
                            acc[i][0] += w * (a + fy * (b - a))
                        else:
                            bilerp4_acc(q0, q1, C, fx, fy, w, acc[i])
                    else:
                        bilinear(img, stride, P.H, P.W, C, x, y, P.border, P.fill, tap)
                        for c in range(C):
                            acc[i][c] += w * tap[c]
        for i in range(n):
            store(P, dst + (u0 + i) * pstride, cstride, acc[i])
        u0 += n


cdef inline void supersample_row(const src_t* img, dst_t* dst, const Params* P, const double* A,
                                 const int* box, double s1, double s2, int area1, int area2, int v,
                                 Py_ssize_t cstride, Py_ssize_t pstride, int C) noexcept nogil:
    """Rotated ROIs: a fixed grid of ceil(0.75 s) bilinear taps per shrunk
    axis (at most 4/3 source pixels apart; measured against exact area
    averaging, sparser grids alias on fine lines and denser ones gain
    nothing), the same offsets for every pixel. A chunk of ACHUNK pixels
    whose taps are all inside runs one grid tap at a time through the planar
    kernel (coordinates, then SIMD taps, then accumulation)."""
    cdef int n1 = 1, n2 = 1, nt, a, b, t, i, c, n, u0, ix, iy
    cdef double ox[MAX_SUPER * MAX_SUPER]
    cdef double oy[MAX_SUPER * MAX_SUPER]
    cdef double pcx[ACHUNK]
    cdef double pcy[ACHUNK]
    cdef Py_ssize_t off[ACHUNK]
    cdef float wx[ACHUNK]
    cdef float wy[ACHUNK]
    cdef float smp[4][ACHUNK]
    cdef float acc[4][ACHUNK]
    cdef float tap[4]
    cdef float s[4]
    cdef double x, y, cx, cy, da, db, otx, oty
    cdef double oxmin = 0.0, oxmax = 0.0, oymin = 0.0, oymax = 0.0
    cdef double xmax = P.W - 1 - (C == 3), ymax = P.H - 1
    cdef float w
    cdef Py_ssize_t stride = P.stride
    cdef int inside
    # 3/4 channels, 32-bit offsets: float32 coordinates relative to the
    # chunk's corner, computed 4 at a time (ACHUNK is a multiple of 4)
    cdef int simd = C != 1 and offsets_fit(img, P.H, stride)
    cdef float lx[ACHUNK]
    cdef float ly[ACHUNK]
    cdef int local, x0, y0, xmaxi = P.W - 2 - (C == 3), ymaxi = P.H - 2
    cdef double xl, yl, ex, ey
    cdef int32_t base_off = 0
    cdef int32_t off32[ACHUNK]
    if area1:
        n1 = min(<int>ceil(s1 * 0.75), <int>MAX_SUPER)
    if area2:
        n2 = min(<int>ceil(s2 * 0.75), <int>MAX_SUPER)
    nt = n1 * n2
    w = <float>(1.0 / nt)
    for b in range(n2):
        db = (b + 0.5) / n2 - 0.5
        for a in range(n1):
            da = (a + 0.5) / n1 - 0.5
            t = b * n1 + a
            ox[t] = da * A[0] + db * A[1]
            oy[t] = da * A[3] + db * A[4]
            oxmin = min(oxmin, ox[t]); oxmax = max(oxmax, ox[t])
            oymin = min(oymin, oy[t]); oymax = max(oymax, oy[t])
    # pixel centre (u, v) in index coordinates
    cx = A[2] + 0.5 * A[0] + (v + 0.5) * A[1] - 0.5
    cy = A[5] + 0.5 * A[3] + (v + 0.5) * A[4] - 0.5
    u0 = box[0]
    while u0 < box[2]:
        n = min(<int>ACHUNK, box[2] - u0)
        for i in range(n):
            pcx[i] = cx + A[0] * (u0 + i)
            pcy[i] = cy + A[3] * (u0 + i)
            for c in range(4):
                acc[c][i] = 0.0
        # centres are linear in i: the chunk's extremes are at its ends
        inside = (min(pcx[0], pcx[n - 1]) + oxmin >= 0.0 and max(pcx[0], pcx[n - 1]) + oxmax < xmax
                  and min(pcy[0], pcy[n - 1]) + oymin >= 0.0 and max(pcy[0], pcy[n - 1]) + oymax < ymax)
        local = 0
        if inside and simd:
            xl = min(pcx[0], pcx[n - 1]) + oxmin
            yl = min(pcy[0], pcy[n - 1]) + oymin
            ex = max(pcx[0], pcx[n - 1]) + oxmax - xl + 2.0
            ey = max(pcy[0], pcy[n - 1]) + oymax - yl + 2.0
            # small local coordinates keep ~1e-5 px in float32; offsets exact in float
            if ex < 512.0 and ey < 512.0 and ey * stride + ex * C * sizeof(src_t) < 8388608.0:
                local = 1
                x0 = <int>xl
                y0 = <int>yl
                base_off = <int32_t>(y0 * stride + x0 * C * sizeof(src_t))
                for i in range(ACHUNK):
                    lx[i] = <float>(pcx[i] - x0) if i < n else 0.0
                    ly[i] = <float>(pcy[i] - y0) if i < n else 0.0
        for t in range(nt):
            otx = ox[t]
            oty = oy[t]
            if local:
                # SIMD coordinates, then the taps over the chunk (kept apart:
                # fused into one pass it measured slower, fewer loads in flight)
                rc_coords_local(lx, ly, <float>otx, <float>oty, n, xmaxi - x0, ymaxi - y0, stride,
                                C * sizeof(src_t), base_off, off32, wx, wy)
                bilerp_planar(img, off32, stride, C, wx, wy, n, &smp[0][0], ACHUNK)
                for c in range(C):
                    for i in range(n):
                        acc[c][i] += w * smp[c][i]
            elif inside:
                for i in range(n):
                    x = pcx[i] + otx
                    y = pcy[i] + oty
                    ix = <int>x
                    iy = <int>y
                    wx[i] = <float>(x - ix)
                    wy[i] = <float>(y - iy)
                    off[i] = iy * stride + ix * C * <Py_ssize_t>sizeof(src_t)
                bilerp_planar(img, off, stride, C, wx, wy, n, &smp[0][0], ACHUNK)
                for c in range(C):
                    for i in range(n):
                        acc[c][i] += w * smp[c][i]
            else:
                for i in range(n):
                    bilinear(img, stride, P.H, P.W, C, pcx[i] + otx, pcy[i] + oty, P.border, P.fill, tap)
                    for c in range(C):
                        acc[c][i] += w * tap[c]
        for i in range(n):
            for c in range(C):
                s[c] = acc[c][i]
            store(P, dst + (u0 + i) * pstride, cstride, s)
        u0 += n
