# cython: language_level=3
"""The per-ROI band kernel: sample, map channels, normalize, store.

One call fills output rows [v0, v1) of one ROI; the batch entry point in
_preprocess.pyx spreads (ROI, band) units over threads. No allocation here:
the chunk buffers live on the stack.
"""
from libc.math cimport floor, hypot, fabs
from libc.stdint cimport int32_t, int64_t

from _interp cimport src_t, dst_t, bilinear, clampc
from _params cimport Params, store, put
from _area cimport area_row, supersample_row
from _separable cimport sep_area_row
from _simd cimport bilerp_planar, offsets_fit, rc_coords_row, rc_norm_plane, rc_prefetch

cdef enum:
    # Interior pixels are done CHUNK at a time in three simple loops
    # (coordinates, per-channel samples, per-channel stores) that the
    # compiler can pipeline and vectorize.
    CHUNK = 128
    # bilinear rows prefetch the source lines of the row this far ahead
    AHEAD = 8


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


cdef inline int inside(const Params* P, double x, double y, int C) noexcept nogil:
    return 0.0 <= x and x < P.W - 1 - (C == 3) and 0.0 <= y and y < P.H - 1


cdef inline void interior_chunk(const src_t* img, dst_t* dst, const Params* P, double bx, double by,
                                double a0, double a3, int u0, int n, Py_ssize_t cstride,
                                Py_ssize_t pstride, int C) noexcept nogil:
    """n <= CHUNK pixels from u0 whose four taps are all inside the image."""
    cdef float smp[4][CHUNK]
    cdef Py_ssize_t stride = P.stride
    if offsets_fit(img, P.H, stride):
        simd_taps(img, P, bx, by, a0, a3, u0, n, &smp[0][0], C)
    else:
        interior_taps(img, P, bx, by, a0, a3, u0, n, &smp[0][0], C)
    normalize_chunk(dst, P, &smp[0][0], u0, n, cstride, pstride, C)


cdef inline void simd_taps(const src_t* img, const Params* P, double bx, double by,
                           double a0, double a3, int u0, int n, float* smp, int C) noexcept nogil:
    """The SIMD coordinate pass (32-bit offsets), then the taps."""
    cdef int32_t off[CHUNK]
    cdef float wx[CHUNK]
    cdef float wy[CHUNK]
    cdef Py_ssize_t stride = P.stride
    # float32 coordinates stay precise for 256 px from a chunk's base: one
    # run per chunk for steps up to 2 px (rotations, enlargements), else two
    cdef int run = CHUNK if max(fabs(a0), fabs(a3)) * CHUNK <= 256.0 else CHUNK // 2
    cdef int k = 0
    while k < n:
        rc_coords_row(bx, by, a0, a3, u0 + k, min(run, n - k), P.W - 2 - (C == 3), P.H - 2, stride,
                      C * sizeof(src_t), off + k, wx + k, wy + k)
        k += run
    bilerp_planar(img, off, stride, C, wx, wy, n, smp, CHUNK)


cdef inline void interior_taps(const src_t* img, const Params* P, double bx, double by,
                               double a0, double a3, int u0, int n, float* smp, int C) noexcept nogil:
    """The scalar coordinate pass (64-bit offsets: images over 2 GB), then the taps."""
    cdef Py_ssize_t off[CHUNK]
    cdef float wx[CHUNK]
    cdef float wy[CHUNK]
    cdef int i, ix, iy
    cdef double x, y
    cdef Py_ssize_t stride = P.stride
    for i in range(n):
        x = bx + a0 * (u0 + i)
        y = by + a3 * (u0 + i)
        # x, y >= 0 here, so truncation is floor; the clamps only guard memory
        ix = min(max(<int>x, 0), P.W - 2 - (C == 3))
        iy = min(max(<int>y, 0), P.H - 2)
        wx[i] = <float>(x - ix)
        wy[i] = <float>(y - iy)
        off[i] = iy * stride + ix * C * <Py_ssize_t>sizeof(src_t)
    bilerp_planar(img, off, stride, C, wx, wy, n, smp, CHUNK)


cdef inline void normalize_chunk(dst_t* dst, const Params* P, const float* smp0, int u0, int n,
                                 Py_ssize_t cstride, Py_ssize_t pstride, int C) noexcept nogil:
    """Channel map, normalization and store of a chunk's planar samples."""
    cdef const float* sk
    cdef int i, k
    cdef float t, mean, inv
    cdef dst_t* d
    for k in range(P.cout):
        mean = P.mean[k]
        inv = P.inv_std[k]
        d = dst + u0 * pstride + k * cstride
        if P.pick:
            sk = smp0 + P.cmap[k] * CHUNK
            if pstride == 1:  # NCHW: contiguous
                if dst_t is float:  # one vectorized loop without aliasing checks
                    rc_norm_plane(d, sk, n, mean, inv)
                else:
                    for i in range(n):
                        put(d + i, (sk[i] - mean) * inv)
            else:
                for i in range(n):
                    put(d + i * pstride, (sk[i] - mean) * inv)
        else:
            for i in range(n):
                t = P.wmat[k][0] * smp0[0 * CHUNK + i]
                if C > 1:
                    t = t + P.wmat[k][1] * smp0[1 * CHUNK + i] + P.wmat[k][2] * smp0[2 * CHUNK + i]
                if C > 3:
                    t = t + P.wmat[k][3] * smp0[3 * CHUNK + i]
                put(d + i * pstride, (t - mean) * inv)


cdef inline void bilinear_row(const src_t* img, dst_t* dst, const Params* P, const double* A,
                              const int* box, double bx, double by, Py_ssize_t cstride,
                              Py_ssize_t pstride, int C) noexcept nogil:
    """One output row inside the content box. C is a literal at every call
    site so that the compiler specializes the channel loops."""
    cdef int u, ua, ub
    cdef double lo = box[0], hi = box[2] - 1, a0 = A[0], a3 = A[3]
    cdef float s[4]
    # the span where all four taps are inside: no border checks there
    # (3-channel taps read one channel past the pixel: keep off the last column)
    if P.W >= 3 and P.H >= 2:
        span(bx, a0, P.W - 1.000001 - (C == 3), &lo, &hi)
        span(by, a3, P.H - 1.000001, &lo, &hi)
    else:
        hi = -1.0
    ua = box[0]
    ub = box[0]
    if hi >= lo:
        ua = max(<int>clampc(floor(lo)) + 1, box[0])
        ub = min(<int>clampc(floor(hi)), box[2] - 1)
        while ua <= ub and not inside(P, bx + a0 * ua, by + a3 * ua, C):
            ua += 1
        while ub >= ua and not inside(P, bx + a0 * ub, by + a3 * ub, C):
            ub -= 1
        ub = max(ub + 1, ua)
    for u in range(box[0], ua):
        bilinear(img, P.stride, P.H, P.W, C, bx + a0 * u, by + a3 * u, P.border, P.fill, s)
        store(P, dst + u * pstride, cstride, s)
    u = ua
    while u < ub:
        interior_chunk(img, dst, P, bx, by, a0, a3, u, min(<int>CHUNK, ub - u), cstride, pstride, C)
        u += CHUNK
    for u in range(ub, box[2]):
        bilinear(img, P.stride, P.H, P.W, C, bx + a0 * u, by + a3 * u, P.border, P.fill, s)
        store(P, dst + u * pstride, cstride, s)


cdef inline void prefetch_row(const src_t* img, const Params* P, const int* box, double x, double y,
                              double a0, double a3, int maxn) noexcept nogil:
    """Prefetch the source lines under one output row's taps. A rotated row
    crosses a band of source rows; without this each line it needs is a
    serial cache miss (a cold 224x224 ROI at 30 degrees took twice as long
    as a warm one)."""
    cdef int k, n
    cdef double w = box[2] - box[0], xe, ye
    cdef Py_ssize_t psz = P.C * sizeof(src_t)
    cdef const char* base = <const char*>img
    cdef int64_t fx, fy, dx, dy
    # one prefetch per source row crossed (it covers the tap row below it
    # too: the next step is one row further), or per 48 bytes along x; at
    # most maxn (bilinear rows: none for shrinking rows, whose taps skip lines)
    n = <int>(max(fabs(a3) * w, fabs(a0) * w * psz / 48.0)) + 1
    if n > maxn or P.H < 2:  # (one-row images: nothing below to prefetch)
        return
    # both ends clamped into the image, so is every point between them;
    # 32.32 fixed point from there
    xe = min(max(x + a0 * box[2], 0.0), P.W - 1.0)
    ye = min(max(y + a3 * box[2], 0.0), P.H - 2.0)
    x = min(max(x + a0 * box[0], 0.0), P.W - 1.0)
    y = min(max(y + a3 * box[0], 0.0), P.H - 2.0)
    fx = <int64_t>(x * 4294967296.0)
    fy = <int64_t>(y * 4294967296.0)
    dx = <int64_t>((xe - x) / n * 4294967296.0)
    dy = <int64_t>((ye - y) / n * 4294967296.0)
    for k in range(n):
        rc_prefetch(base + (fy >> 32) * P.stride + (fx >> 32) * psz)
        fx += dx
        fy += dy
    rc_prefetch(base + (<int>ye + 1) * P.stride + (<int>xe) * psz)


cdef inline void warp_band(const src_t* img, dst_t* out, const Params* P,
                           const double* A, const int* box, int v0, int v1) noexcept nogil:
    """Rows [v0, v1) of one ROI. A maps output pixel centres to continuous
    source coordinates; out points at this ROI's slice of the batch."""
    cdef int u, v, c
    cdef double t
    cdef float f[4]
    cdef double s1 = hypot(A[0], A[3]), s2 = hypot(A[1], A[4])
    cdef int area1 = 0, area2 = 0
    # axis-aligned ROIs (0/90/180/270 degrees) get exact area averaging
    cdef int aligned = (A[1] == 0.0 and A[3] == 0.0) or (A[0] == 0.0 and A[4] == 0.0)
    cdef Py_ssize_t cstride, pstride
    # index-convention offsets: x_idx = A0 u + A1 v + (A2 + (A0 + A1)/2 - 1/2)
    cdef double bx = A[2] + 0.5 * (A[0] + A[1]) - 0.5
    cdef double by = A[5] + 0.5 * (A[3] + A[4]) - 0.5
    cdef dst_t* dst
    # area sampling needs orthogonal output axes (always true for ROIs)
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
        if (area1 or area2) and not aligned:
            # the leading edge of the strip of source rows under output row v + 2
            if v + 2 < box[3]:
                t = v + 2.5
                prefetch_row(img, P, box, bx + A[1] * t, by + A[4] * t, A[0], A[3], 8192)
            if P.C == 3:
                supersample_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 3)
            elif P.C == 1:
                supersample_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 1)
            else:
                supersample_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 4)
        elif area1 or area2:
            # 0/180 degrees: separable exact area (falls back per row)
            if P.C == 3:
                if sep_area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 3):
                    continue
            elif P.C == 1:
                if sep_area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 1):
                    continue
            elif sep_area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 4):
                continue
            if P.C == 3:
                area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 3)
            elif P.C == 1:
                area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 1)
            else:
                area_row(img, dst, P, A, box, s1, s2, area1, area2, v, cstride, pstride, 4)
        else:
            if v + AHEAD < box[3] and (v & 3) == 0:
                prefetch_row(img, P, box, bx + A[1] * (v + AHEAD), by + A[4] * (v + AHEAD), A[0], A[3],
                             2 * (box[2] - box[0]) + 2)
            if P.C == 3:
                bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 3)
            elif P.C == 1:
                bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 1)
            else:
                bilinear_row(img, dst, P, A, box, bx + A[1] * v, by + A[4] * v, cstride, pstride, 4)
