# cython: language_level=3
"""SIMD bilinear taps of 3-/4-channel pixels (_simd.h: SSE2 or plain C)."""
from libc.stdint cimport uint8_t, uint16_t, int32_t

from _interp cimport src_t

ctypedef fused off_t:
    int32_t
    Py_ssize_t

cdef extern from "_simd.h" nogil:
    void rc_prefetch(const void* p)

    void rc_bilerp_planar_u8(const char* img, const Py_ssize_t* off, Py_ssize_t stride, int C,
                             const float* wx, const float* wy, int n, float* smp, int ld)
    void rc_bilerp_planar_u16(const char* img, const Py_ssize_t* off, Py_ssize_t stride, int C,
                              const float* wx, const float* wy, int n, float* smp, int ld)
    void rc_bilerp_planar32_u8(const char* img, const int32_t* off, Py_ssize_t stride, int C,
                               const float* wx, const float* wy, int n, float* smp, int ld)
    void rc_bilerp_planar32_u16(const char* img, const int32_t* off, Py_ssize_t stride, int C,
                                const float* wx, const float* wy, int n, float* smp, int ld)
    void rc_bilerp_gray_u8(const uint8_t* img, const Py_ssize_t* off, Py_ssize_t stride,
                           const float* wx, const float* wy, int n, float* smp)
    void rc_bilerp_gray32_u8(const uint8_t* img, const int32_t* off, Py_ssize_t stride,
                             const float* wx, const float* wy, int n, float* smp)
    void rc_norm_plane(float* d, const float* s, int n, float mean, float inv)
    void rc_coords_local(const float* lx, const float* ly, float ox, float oy, int n,
                         float xmax, float ymax, Py_ssize_t stride, int csz, int32_t base_off,
                         int32_t* off, float* wx, float* wy)
    void rc_coords_row(double bx, double by, double a0, double a3, int u0, int n, int xmax,
                       int ymax, Py_ssize_t stride, int csz, int32_t* off, float* wx, float* wy)
    void rc_bilerp4_u8(const uint8_t* q0, const uint8_t* q1, int C, float fx, float fy, float* out)
    void rc_bilerp4_u16(const uint16_t* q0, const uint16_t* q1, int C, float fx, float fy, float* out)
    void rc_bilerp4_acc_u8(const uint8_t* q0, const uint8_t* q1, int C, float fx, float fy,
                           float w, float* acc)
    void rc_vacc_u8(const uint8_t* r0, const uint8_t* r1, float w0, float w1, float* buf, int m, int acc)
    void rc_vacc_u16(const uint16_t* r0, const uint16_t* r1, float w0, float w1, float* buf, int m, int acc)
    void rc_bilerp4_acc_u16(const uint16_t* q0, const uint16_t* q1, int C, float fx, float fy,
                            float w, float* acc)


cdef inline void bilerp4(const src_t* q0, const src_t* q1, int C, float fx, float fy,
                         float* out) noexcept nogil:
    """out[0..3] = the pixel's channels interpolated; reads 4 channels per tap."""
    if src_t is uint8_t:
        rc_bilerp4_u8(q0, q1, C, fx, fy, out)
    else:
        rc_bilerp4_u16(q0, q1, C, fx, fy, out)


cdef inline void bilerp4_acc(const src_t* q0, const src_t* q1, int C, float fx, float fy,
                             float w, float* acc) noexcept nogil:
    if src_t is uint8_t:
        rc_bilerp4_acc_u8(q0, q1, C, fx, fy, w, acc)
    else:
        rc_bilerp4_acc_u16(q0, q1, C, fx, fy, w, acc)


cdef inline void bilerp_gray(const src_t* img, const off_t* off, Py_ssize_t stride,
                             const float* wx, const float* wy, int n, float* smp) noexcept nogil:
    """smp[i] = the one-channel pixel i interpolated (taps at img + off[i])."""
    if src_t is uint8_t:  # SSE2, 4 taps per step (_simd.h)
        if off_t is int32_t:
            rc_bilerp_gray32_u8(img, off, stride, wx, wy, n, smp)
        else:
            rc_bilerp_gray_u8(img, off, stride, wx, wy, n, smp)
        return
    cdef int i
    cdef const src_t* q0
    cdef const src_t* q1
    cdef float t, b
    for i in range(n):
        q0 = <const src_t*>(<const char*>img + off[i])
        q1 = <const src_t*>(<const char*>q0 + stride)
        t = q0[0] + wx[i] * (<float>q0[1] - <float>q0[0])
        b = q1[0] + wx[i] * (<float>q1[1] - <float>q1[0])
        smp[i] = t + wy[i] * (b - t)


cdef inline void bilerp_planar(const src_t* img, const off_t* off, Py_ssize_t stride, int C,
                               const float* wx, const float* wy, int n, float* smp, int ld) noexcept nogil:
    """smp[c * ld + i] = channel c of pixel i (bilinear; C > 1 reads 4 channels);
    off: 32-bit offsets (from the SIMD coordinate passes) or 64-bit ones."""
    if C == 1:
        bilerp_gray(img, off, stride, wx, wy, n, smp)
    elif src_t is uint8_t:
        if off_t is int32_t:
            rc_bilerp_planar32_u8(<const char*>img, off, stride, C, wx, wy, n, smp, ld)
        else:
            rc_bilerp_planar_u8(<const char*>img, off, stride, C, wx, wy, n, smp, ld)
    elif off_t is int32_t:
        rc_bilerp_planar32_u16(<const char*>img, off, stride, C, wx, wy, n, smp, ld)
    else:
        rc_bilerp_planar_u16(<const char*>img, off, stride, C, wx, wy, n, smp, ld)


cdef inline void vacc(const src_t* r0, const src_t* r1, float w0, float w1, float* buf, int m,
                      int acc) noexcept nogil:
    """buf[k] (= or +=) w0 r0[k] + w1 r1[k], k < m; r1 may be NULL (one row)."""
    if src_t is uint8_t:
        rc_vacc_u8(r0, r1, w0, w1, buf, m, acc)
    else:
        rc_vacc_u16(r0, r1, w0, w1, buf, m, acc)


cdef inline bint offsets_fit(const src_t* img, int H, Py_ssize_t stride) noexcept nogil:
    """The SIMD coordinate passes keep byte offsets in 32 bits: the image must fit."""
    return <double>H * <double>stride < 2147483000.0
