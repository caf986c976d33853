# cython: language_level=3
"""The band kernel for generic images: 1..16 interleaved bands of uint8,
uint16 or float32 (the named 1/3/4-channel uint8/uint16 layouts take the
SIMD kernels of _kernel.pxd). Same geometry and the same sampling rules as
those (bilinear; axis-aligned shrinks > 2x: exact area cells, paired into
linear taps as in _area.pxd; rotated shrinks: the ceil(0.75 s) grid of
supersample_row), scalar, and only the source bands the output reads are
sampled (Params.need).
"""
from libc.math cimport ceil, hypot, fabs
from libc.stdint cimport uint8_t, uint16_t

from _interp cimport dst_t, ifloor, clampc, BORDER_CONSTANT
from _params cimport Params, store, put, MAX_BANDS, MAX_OUT_CHANNELS
from _area cimport cells, MAX_CELLS, MAX_SUPER
from _simd cimport rc_bilerp4_u8, rc_bilerp4_u16

cdef extern from "_simd.h" nogil:
    void rc_bilerp4_f32(const float* q0, const float* q1, int C, float fx, float fy, float* out)

cdef enum:
    GCHUNK = 64  # pixels sampled before they are stored, channel by channel

ctypedef fused gsrc_t:
    uint8_t
    uint16_t
    float


cdef inline float tap(const gsrc_t* img, const Params* P, int ix, int iy, int c) noexcept nogil:
    """Band c of source pixel (ix, iy), with the border rule."""
    if ix < 0 or iy < 0 or ix >= P.W or iy >= P.H:
        if P.border == BORDER_CONSTANT:
            return P.fill
        ix = 0 if ix < 0 else (P.W - 1 if ix >= P.W else ix)
        iy = 0 if iy < 0 else (P.H - 1 if iy >= P.H else iy)
    return <float>(<const gsrc_t*>(<const char*>img + iy * P.stride))[<Py_ssize_t>ix * P.C + c]


cdef inline void gbilinear(const gsrc_t* img, const Params* P, double x, double y, float w,
                           float* acc) noexcept nogil:
    """acc[c] += w * the bilinear sample at index coordinates (x, y), for
    the needed bands c (the arithmetic of _interp.bilinear)."""
    cdef int ix, iy, j, c, C = P.C
    cdef float fx, fy, w00, w01, w10, w11
    cdef const gsrc_t* p0
    cdef const gsrc_t* p1
    x = clampc(x)
    y = clampc(y)
    ix = ifloor(x)
    iy = ifloor(y)
    fx = <float>(x - ix)
    fy = <float>(y - iy)
    w00 = (1.0 - fx) * (1.0 - fy)
    w01 = fx * (1.0 - fy)
    w10 = (1.0 - fx) * fy
    w11 = fx * fy
    if ix >= 0 and iy >= 0 and ix < P.W - 1 and iy < P.H - 1:
        p0 = <const gsrc_t*>(<const char*>img + iy * P.stride) + <Py_ssize_t>ix * C
        p1 = <const gsrc_t*>(<const char*>img + (iy + 1) * P.stride) + <Py_ssize_t>ix * C
        for j in range(P.nneed):
            c = P.need[j]
            acc[c] += w * ((w00 * p0[c] + w01 * p0[c + C]) + (w10 * p1[c] + w11 * p1[c + C]))
        return
    for j in range(P.nneed):
        c = P.need[j]
        acc[c] += w * ((w00 * tap(img, P, ix, iy, c) + w01 * tap(img, P, ix + 1, iy, c))
                       + (w10 * tap(img, P, ix, iy + 1, c) + w11 * tap(img, P, ix + 1, iy + 1, c)))


cdef inline void clear(float* s) noexcept nogil:
    cdef int c
    for c in range(MAX_BANDS):
        s[c] = 0.0


cdef inline void area_pixel(const gsrc_t* img, const Params* P, const double* A, double s1, double s2,
                            int area1, int area2, int u, int v, float* s) noexcept nogil:
    """Axis-aligned footprint of output pixel (u, v): area cells per axis
    (the cells and taps of _area.area_row)."""
    cdef double e1x = A[0] / s1, e1y = A[3] / s1, e2x = A[1] / s2, e2y = A[4] / s2
    cdef double o1 = A[2] * e1x + A[5] * e1y, o2 = A[2] * e2x + A[5] * e2y
    cdef double p1[MAX_CELLS + 2]
    cdef double w1[MAX_CELLS + 2]
    cdef double p2[MAX_CELLS + 2]
    cdef double w2[MAX_CELLS + 2]
    cdef int n1, n2, i, j
    cdef double rx, ry
    n1 = cells(u * s1 + o1, s1, 1.0 / s1, area1, p1, w1)
    n2 = cells(v * s2 + o2, s2, 1.0 / s2, area2, p2, w2)
    for j in range(n2):
        rx = p2[j] * e2x - 0.5
        ry = p2[j] * e2y - 0.5
        for i in range(n1):
            gbilinear(img, P, p1[i] * e1x + rx, p1[i] * e1y + ry, <float>w2[j] * <float>w1[i], s)


cdef inline void grid_pixel(const gsrc_t* img, const Params* P, const double* ox, const double* oy,
                            int nt, double cx, double cy, float* s) noexcept nogil:
    """Rotated footprint: the mean of the grid taps about the centre (cx, cy)."""
    cdef int t
    cdef float w = <float>(1.0 / nt)
    for t in range(nt):
        gbilinear(img, P, cx + ox[t], cy + oy[t], w, s)


cdef inline void bilerp4(const gsrc_t* q0, const gsrc_t* q1, int C, float fx, float fy,
                         float* out) noexcept nogil:
    """out[0..3]: 4 consecutive bands from q0 / q1 (rows iy, iy + 1), SIMD lerps."""
    if gsrc_t is float:
        rc_bilerp4_f32(q0, q1, C, fx, fy, out)
    elif gsrc_t is uint8_t:
        rc_bilerp4_u8(q0, q1, C, fx, fy, out)
    else:
        rc_bilerp4_u16(q0, q1, C, fx, fy, out)


cdef inline int band_window(const Params* P) noexcept nogil:
    """The first of 4 consecutive bands holding every needed one (one SIMD tap
    per pixel), or -1 (need is sorted)."""
    cdef int o = P.need[0]
    if P.nneed == 0 or P.need[P.nneed - 1] - o >= 4 or o + 4 > P.C:
        return -1
    return o


cdef inline void bilinear_chunk(const gsrc_t* img, const Params* P, double x, double y, double a0,
                                double a3, int n, float* smp, int window) noexcept nogil:
    """smp[j * GCHUNK + i]: needed band j of the n pixels from (x, y) in steps
    (a0, a3), bilinear; planar for the stores. window >= 0: the needed bands
    lie in bands window..window+3, read by one SIMD tap (lerps), else each
    band with the arithmetic of gbilinear."""
    cdef int i, j, c, ix, iy, C = P.C, nneed = P.nneed
    cdef double xi, yi
    cdef float fx, fy, w00, w01, w10, w11
    cdef const gsrc_t* p0
    cdef const gsrc_t* p1
    cdef float s[MAX_BANDS]
    cdef float q[4]
    for i in range(n):
        xi = clampc(x + a0 * i)
        yi = clampc(y + a3 * i)
        ix = ifloor(xi)
        iy = ifloor(yi)
        if ix >= 0 and iy >= 0 and ix < P.W - 1 and iy < P.H - 1:
            fx = <float>(xi - ix)
            fy = <float>(yi - iy)
            p0 = <const gsrc_t*>(<const char*>img + iy * P.stride) + <Py_ssize_t>ix * C
            p1 = <const gsrc_t*>(<const char*>img + (iy + 1) * P.stride) + <Py_ssize_t>ix * C
            if window >= 0:
                bilerp4(p0 + window, p1 + window, C, fx, fy, q)
                for j in range(nneed):
                    smp[j * GCHUNK + i] = q[P.need[j] - window]
                continue
            w00 = (1.0 - fx) * (1.0 - fy)
            w01 = fx * (1.0 - fy)
            w10 = (1.0 - fx) * fy
            w11 = fx * fy
            for j in range(nneed):
                c = P.need[j]
                smp[j * GCHUNK + i] = (w00 * p0[c] + w01 * p0[c + C]) + (w10 * p1[c] + w11 * p1[c + C])
        else:  # a tap outside: the border rule
            clear(s)
            gbilinear(img, P, xi, yi, 1.0, s)
            for j in range(nneed):
                smp[j * GCHUNK + i] = s[P.need[j]]


cdef inline void store_chunk(const Params* P, dst_t* dst, const float* smp, const int* slot, int n,
                             Py_ssize_t cstride, Py_ssize_t pstride) noexcept nogil:
    """Output channel k of n pixels from planar samples (slot[k]: its band's
    row in smp); a luma mix goes pixel by pixel through store()."""
    cdef int i, j, k
    cdef float mean, inv
    cdef const float* sk
    cdef dst_t* d
    cdef float s[MAX_BANDS]
    if not P.pick:
        for i in range(n):
            for j in range(P.nneed):
                s[P.need[j]] = smp[j * GCHUNK + i]
            store(P, dst + i * pstride, cstride, s)
        return
    for k in range(P.cout):
        mean = P.mean[k]
        inv = P.inv_std[k]
        sk = smp + slot[k] * GCHUNK
        d = dst + k * cstride
        if pstride == 1:
            for i in range(n):
                put(d + i, (sk[i] - mean) * inv)
        else:
            for i in range(n):
                put(d + i * pstride, (sk[i] - mean) * inv)


cdef inline int grid_offsets(const double* A, double s1, double s2, int area1, int area2,
                             double* ox, double* oy) noexcept nogil:
    """The rotated shrink's grid of taps about a pixel centre (as
    _area.supersample_row); returns their count."""
    cdef int a, b, t, n1 = 1, n2 = 1
    cdef double da, db
    if area1:
        n1 = min(<int>ceil(s1 * 0.75), <int>MAX_SUPER)
    if area2:
        n2 = min(<int>ceil(s2 * 0.75), <int>MAX_SUPER)
    for b in range(n2):
        db = (b + 0.5) / n2 - 0.5
        for a in range(n1):
            da = (a + 0.5) / n1 - 0.5
            t = b * n1 + a
            ox[t] = da * A[0] + db * A[1]
            oy[t] = da * A[3] + db * A[4]
    return n1 * n2


cdef inline void generic_row(const gsrc_t* img, dst_t* dst, const Params* P, const double* A,
                             const int* box, int v, double s1, double s2, int area1, int area2,
                             const double* ox, const double* oy, int nt, const int* slot, int window,
                             Py_ssize_t cstride, Py_ssize_t pstride) noexcept nogil:
    """The content box of output row v: GCHUNK pixels at a time sampled into
    planar rows, then stored channel by channel."""
    cdef int u, u0, n, i, j
    cdef int aligned = (A[1] == 0.0 and A[3] == 0.0) or (A[0] == 0.0 and A[4] == 0.0)
    cdef double bx = A[2] + 0.5 * (A[0] + A[1]) - 0.5
    cdef double by = A[5] + 0.5 * (A[3] + A[4]) - 0.5
    cdef float s[MAX_BANDS]
    cdef float smp[MAX_BANDS * GCHUNK]
    u0 = box[0]
    while u0 < box[2]:
        n = min(<int>GCHUNK, box[2] - u0)
        if not (area1 or area2):
            bilinear_chunk(img, P, bx + A[0] * u0 + A[1] * v, by + A[3] * u0 + A[4] * v, A[0], A[3],
                           n, smp, window)
        else:
            for i in range(n):
                u = u0 + i
                clear(s)
                if aligned:
                    area_pixel(img, P, A, s1, s2, area1, area2, u, v, s)
                else:
                    grid_pixel(img, P, ox, oy, nt, bx + A[0] * u + A[1] * v, by + A[3] * u + A[4] * v, s)
                for j in range(P.nneed):
                    smp[j * GCHUNK + i] = s[P.need[j]]
        store_chunk(P, dst + u0 * pstride, smp, slot, n, cstride, pstride)
        u0 += n


cdef inline void generic_band(const gsrc_t* img, dst_t* out, const Params* P,
                              const double* A, const int* box, int v0, int v1) noexcept nogil:
    """Rows [v0, v1) of one ROI (see _kernel.warp_band for A and box)."""
    cdef int u, v, j, k, nt = 1
    cdef float f[MAX_BANDS]
    cdef int slot[MAX_OUT_CHANNELS]
    cdef double ox[MAX_SUPER * MAX_SUPER]
    cdef double oy[MAX_SUPER * MAX_SUPER]
    cdef double s1 = hypot(A[0], A[3]), s2 = hypot(A[1], A[4])
    cdef int area1 = 0, area2 = 0
    cdef int aligned = (A[1] == 0.0 and A[3] == 0.0) or (A[0] == 0.0 and A[4] == 0.0)
    cdef int window = band_window(P)
    cdef Py_ssize_t cstride, pstride
    cdef dst_t* dst
    if P.antialias and fabs(A[0] * A[1] + A[3] * A[4]) <= 1e-9 * s1 * s2:
        area1 = s1 > 2.0
        area2 = s2 > 2.0
    if (area1 or area2) and not aligned:
        nt = grid_offsets(A, s1, s2, area1, area2, ox, oy)
    for k in range(P.cout):  # the planar row of each output channel's band
        slot[k] = 0
        for j in range(P.nneed):
            if P.pick and P.need[j] == P.cmap[k]:
                slot[k] = j
    if P.nhwc:
        cstride = 1
        pstride = P.cout
    else:
        cstride = <Py_ssize_t>P.out_h * P.out_w
        pstride = 1
    for k in range(MAX_BANDS):
        f[k] = P.fill
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
        generic_row(img, dst, P, A, box, v, s1, s2, area1, area2, ox, oy, nt, slot, window, cstride, pstride)
