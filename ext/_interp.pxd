# cython: language_level=3
"""Pointer kernels: pixel fetch with borders, bilinear taps, float16 stores.

All coordinates here are *index* coordinates (pixel i has its centre at i),
the continuous ones minus 0.5. `stride` is the row stride in bytes.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.math cimport floor

ctypedef fused src_t:
    uint8_t
    uint16_t

# float16 output is stored as its bit pattern (Cython has no half type).
ctypedef fused dst_t:
    float
    uint16_t

cdef enum:
    BORDER_CONSTANT = 0
    BORDER_REPLICATE = 1

ctypedef union F32Bits:
    float f
    uint32_t u


cdef inline uint16_t float_to_half(float value) noexcept nogil:
    # Round-to-nearest-even float32 -> float16 (F. Giesen's float_to_half_fast3_rtne).
    cdef F32Bits f, magic
    cdef uint32_t sign, mant_odd
    cdef uint16_t o
    f.f = value
    sign = f.u & 0x80000000u
    f.u ^= sign
    if f.u >= (<uint32_t>(127 + 16) << 23):  # overflow, inf or nan
        o = 0x7e00 if f.u > 0x7f800000u else 0x7c00
    elif f.u < (<uint32_t>113 << 23):  # subnormal or zero half
        magic.u = <uint32_t>((127 - 15) + (23 - 10) + 1) << 23
        f.f = f.f + magic.f
        o = <uint16_t>(f.u - magic.u)
    else:
        mant_odd = (f.u >> 13) & 1
        f.u += (<uint32_t>(15 - 127) << 23) + 0xfff
        f.u += mant_odd
        o = <uint16_t>(f.u >> 13)
    return o | <uint16_t>(sign >> 16)


cdef inline int ifloor(double x) noexcept nogil:
    # Callers clamp x to +-2**30 first, so the cast cannot overflow.
    cdef int i = <int>x
    return i - (i > x)


cdef inline double clampc(double x) noexcept nogil:
    # Far-away points are outside anyway; keep them in int range.
    if x > 1073741824.0:
        return 1073741824.0
    if x < -1073741824.0:
        return -1073741824.0
    return x


cdef inline void fetch(const src_t* img, Py_ssize_t stride, int H, int W, int C,
                       int ix, int iy, int border, float fill, float* px) noexcept nogil:
    """One source pixel (all C channels) with the border rule applied."""
    cdef int c
    cdef const src_t* p
    if ix < 0 or iy < 0 or ix >= W or iy >= H:
        if border == BORDER_CONSTANT:
            for c in range(C):
                px[c] = fill
            return
        ix = 0 if ix < 0 else (W - 1 if ix >= W else ix)
        iy = 0 if iy < 0 else (H - 1 if iy >= H else iy)
    p = <const src_t*>(<const char*>img + iy * stride) + ix * C
    for c in range(C):
        px[c] = <float>p[c]


cdef inline void bilinear(const src_t* img, Py_ssize_t stride, int H, int W, int C,
                          double x, double y, int border, float fill, float* out) noexcept nogil:
    """Bilinear sample of all C channels at index coordinates (x, y)."""
    cdef int ix, iy, c
    cdef float fx, fy, w00, w01, w10, w11
    cdef const src_t* p0
    cdef const src_t* p1
    cdef float a[4]
    cdef float b[4]
    cdef float d[4]
    cdef float e[4]
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
    if ix >= 0 and iy >= 0 and ix < W - 1 and iy < H - 1:
        p0 = <const src_t*>(<const char*>img + iy * stride) + ix * C
        p1 = <const src_t*>(<const char*>img + (iy + 1) * stride) + ix * C
        for c in range(C):
            out[c] = (w00 * p0[c] + w01 * p0[c + C]) + (w10 * p1[c] + w11 * p1[c + C])
        return
    fetch(img, stride, H, W, C, ix, iy, border, fill, a)
    fetch(img, stride, H, W, C, ix + 1, iy, border, fill, b)
    fetch(img, stride, H, W, C, ix, iy + 1, border, fill, d)
    fetch(img, stride, H, W, C, ix + 1, iy + 1, border, fill, e)
    for c in range(C):
        out[c] = (w00 * a[c] + w01 * b[c]) + (w10 * d[c] + w11 * e[c])
