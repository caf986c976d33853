/* Bilinear taps of 3- or 4-channel pixels, all channels at once.
 *
 * SSE2 (part of every x86-64 CPU) when the compiler targets it, plain C
 * otherwise. Callers guarantee that 4 channels' worth of bytes can be read
 * from each tap (for 3-channel pixels that is one byte past the pixel: the
 * kernel keeps these taps away from the very end of the buffer).
 */
#ifndef ROICLASS_SIMD_H
#define ROICLASS_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <Python.h>  /* Py_ssize_t */

#if defined(__GNUC__) || defined(__clang__)
#define rc_prefetch(p) __builtin_prefetch((const void*)(p))
#else
#define rc_prefetch(p) ((void)(p))
#endif

#if defined(__SSE2__)
#include <emmintrin.h>

static inline __m128 rc_load4_u8(const uint8_t* p) {
    int32_t v;
    __m128i z = _mm_setzero_si128();
    memcpy(&v, p, 4);
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(v), z), z));
}

static inline __m128 rc_load4_u16(const uint16_t* p) {
    __m128i z = _mm_setzero_si128();
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i*)p), z));
}

#define RC_BILERP(load, q0, q1, C, fx, fy, res)                                 \
    do {                                                                        \
        __m128 a_ = load(q0), b_ = load((q0) + (C));                            \
        __m128 c_ = load(q1), d_ = load((q1) + (C));                            \
        __m128 vx_ = _mm_set1_ps(fx);                                           \
        __m128 t_ = _mm_add_ps(a_, _mm_mul_ps(vx_, _mm_sub_ps(b_, a_)));        \
        __m128 u_ = _mm_add_ps(c_, _mm_mul_ps(vx_, _mm_sub_ps(d_, c_)));        \
        res = _mm_add_ps(t_, _mm_mul_ps(_mm_set1_ps(fy), _mm_sub_ps(u_, t_)));  \
    } while (0)

/* out[0..3] = bilinear sample of the 4 channels starting at q0 (row iy) / q1 (row iy+1) */
static inline void rc_bilerp4_u8(const uint8_t* q0, const uint8_t* q1, int C, float fx, float fy, float* out) {
    __m128 r;
    RC_BILERP(rc_load4_u8, q0, q1, C, fx, fy, r);
    _mm_storeu_ps(out, r);
}

static inline void rc_bilerp4_u16(const uint16_t* q0, const uint16_t* q1, int C, float fx, float fy, float* out) {
    __m128 r;
    RC_BILERP(rc_load4_u16, q0, q1, C, fx, fy, r);
    _mm_storeu_ps(out, r);
}

/* acc[0..3] += w * bilinear sample */
static inline void rc_bilerp4_acc_u8(const uint8_t* q0, const uint8_t* q1, int C, float fx, float fy,
                                     float w, float* acc) {
    __m128 r;
    RC_BILERP(rc_load4_u8, q0, q1, C, fx, fy, r);
    _mm_storeu_ps(acc, _mm_add_ps(_mm_loadu_ps(acc), _mm_mul_ps(_mm_set1_ps(w), r)));
}

static inline void rc_bilerp4_acc_u16(const uint16_t* q0, const uint16_t* q1, int C, float fx, float fy,
                                      float w, float* acc) {
    __m128 r;
    RC_BILERP(rc_load4_u16, q0, q1, C, fx, fy, r);
    _mm_storeu_ps(acc, _mm_add_ps(_mm_loadu_ps(acc), _mm_mul_ps(_mm_set1_ps(w), r)));
}

/* Pass 2 of the interior kernel: n pixels at byte offsets off[i] (row iy,
 * the next row `stride` bytes further), weights wx/wy; channel c of pixel i
 * goes to smp[c * ld + i] (planar, so the stores that follow vectorize). */
#define RC_BILERP_PLANAR(T, load, name)                                                   \
static inline void name(const char* img, const Py_ssize_t* off, Py_ssize_t stride, int C,  \
                        const float* wx, const float* wy, int n, float* smp, int ld) {    \
    int i = 0;                                                                           \
    for (; i + 4 <= n; i += 4) {                                                         \
        __m128 r0, r1, r2, r3;                                                           \
        const T* q;                                                                      \
        q = (const T*)(img + off[i]);                                                    \
        RC_BILERP(load, q, (const T*)((const char*)q + stride), C, wx[i], wy[i], r0);    \
        q = (const T*)(img + off[i + 1]);                                                \
        RC_BILERP(load, q, (const T*)((const char*)q + stride), C, wx[i + 1], wy[i + 1], r1); \
        q = (const T*)(img + off[i + 2]);                                                \
        RC_BILERP(load, q, (const T*)((const char*)q + stride), C, wx[i + 2], wy[i + 2], r2); \
        q = (const T*)(img + off[i + 3]);                                                \
        RC_BILERP(load, q, (const T*)((const char*)q + stride), C, wx[i + 3], wy[i + 3], r3); \
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);                                               \
        _mm_storeu_ps(smp + i, r0);                                                      \
        _mm_storeu_ps(smp + ld + i, r1);                                                 \
        _mm_storeu_ps(smp + 2 * ld + i, r2);                                             \
        _mm_storeu_ps(smp + 3 * ld + i, r3);                                             \
    }                                                                                    \
    for (; i < n; i++) {                                                                 \
        float px[4];                                                                     \
        __m128 r;                                                                        \
        const T* q = (const T*)(img + off[i]);                                           \
        RC_BILERP(load, q, (const T*)((const char*)q + stride), C, wx[i], wy[i], r);     \
        _mm_storeu_ps(px, r);                                                            \
        for (int c = 0; c < 4; c++) smp[c * ld + i] = px[c];                             \
    }                                                                                    \
}
RC_BILERP_PLANAR(uint8_t, rc_load4_u8, rc_bilerp_planar_u8)
RC_BILERP_PLANAR(uint16_t, rc_load4_u16, rc_bilerp_planar_u16)

#else /* portable fallback, same arithmetic */

#define RC_SCALAR(T, name, ACC)                                                          \
static inline void name(const T* q0, const T* q1, int C, float fx, float fy, float w,    \
                        float* out) {                                                    \
    for (int c = 0; c < 4; c++) {                                                        \
        float t = q0[c] + fx * ((float)q0[c + C] - (float)q0[c]);                        \
        float u = q1[c] + fx * ((float)q1[c + C] - (float)q1[c]);                        \
        float r = t + fy * (u - t);                                                      \
        if (ACC) out[c] += w * r; else out[c] = r;                                       \
    }                                                                                    \
}
RC_SCALAR(uint8_t, rc_bilerp4w_u8, 0)
RC_SCALAR(uint16_t, rc_bilerp4w_u16, 0)
RC_SCALAR(uint8_t, rc_bilerp4_acc_u8, 1)
RC_SCALAR(uint16_t, rc_bilerp4_acc_u16, 1)
#define rc_bilerp4_u8(q0, q1, C, fx, fy, out) rc_bilerp4w_u8(q0, q1, C, fx, fy, 0.0f, out)
#define rc_bilerp4_u16(q0, q1, C, fx, fy, out) rc_bilerp4w_u16(q0, q1, C, fx, fy, 0.0f, out)

#define RC_PLANAR_SCALAR(T, name)                                                         \
static inline void name(const char* img, const Py_ssize_t* off, Py_ssize_t stride, int C,  \
                        const float* wx, const float* wy, int n, float* smp, int ld) {    \
    for (int i = 0; i < n; i++) {                                                        \
        const T* q0 = (const T*)(img + off[i]);                                          \
        const T* q1 = (const T*)((const char*)q0 + stride);                              \
        for (int c = 0; c < 4; c++) {                                                    \
            float t = q0[c] + wx[i] * ((float)q0[c + C] - (float)q0[c]);                 \
            float u = q1[c] + wx[i] * ((float)q1[c + C] - (float)q1[c]);                 \
            smp[c * ld + i] = t + wy[i] * (u - t);                                       \
        }                                                                                \
    }                                                                                    \
}
RC_PLANAR_SCALAR(uint8_t, rc_bilerp_planar_u8)
RC_PLANAR_SCALAR(uint16_t, rc_bilerp_planar_u16)

#endif

/* Vertical pass of the separable area path: buf[k] (=, or += when acc)
 * w0 * r0[k] + w1 * r1[k] for k < m (r1 may be NULL: one row). Plain C for
 * uint16 and non-SSE2 targets; SSE2 for uint8, 16 bytes per step. */
#define RC_VACC_C(T, name)                                                                \
static inline void name(const T* r0, const T* r1, float w0, float w1, float* buf, int m,  \
                        int acc) {                                                         \
    for (int k = 0; k < m; k++) {                                                          \
        float v = w0 * (float)r0[k] + (r1 ? w1 * (float)r1[k] : 0.0f);                     \
        buf[k] = acc ? buf[k] + v : v;                                                     \
    }                                                                                      \
}
RC_VACC_C(uint16_t, rc_vacc_u16)
RC_VACC_C(uint8_t, rc_vacc_u8_c)

#if defined(__SSE2__)
static inline void rc_vacc_u8(const uint8_t* r0, const uint8_t* r1, float w0, float w1, float* buf,
                              int m, int acc) {
    const __m128i z = _mm_setzero_si128();
    const __m128 v0 = _mm_set1_ps(w0), v1 = _mm_set1_ps(w1);
    int k = 0;
    for (; k + 16 <= m; k += 16) {
        __m128i a = _mm_loadu_si128((const __m128i*)(r0 + k));
        __m128i al = _mm_unpacklo_epi8(a, z), ah = _mm_unpackhi_epi8(a, z);
        __m128 f0 = _mm_mul_ps(v0, _mm_cvtepi32_ps(_mm_unpacklo_epi16(al, z)));
        __m128 f1 = _mm_mul_ps(v0, _mm_cvtepi32_ps(_mm_unpackhi_epi16(al, z)));
        __m128 f2 = _mm_mul_ps(v0, _mm_cvtepi32_ps(_mm_unpacklo_epi16(ah, z)));
        __m128 f3 = _mm_mul_ps(v0, _mm_cvtepi32_ps(_mm_unpackhi_epi16(ah, z)));
        if (r1) {
            __m128i b = _mm_loadu_si128((const __m128i*)(r1 + k));
            __m128i bl = _mm_unpacklo_epi8(b, z), bh = _mm_unpackhi_epi8(b, z);
            f0 = _mm_add_ps(f0, _mm_mul_ps(v1, _mm_cvtepi32_ps(_mm_unpacklo_epi16(bl, z))));
            f1 = _mm_add_ps(f1, _mm_mul_ps(v1, _mm_cvtepi32_ps(_mm_unpackhi_epi16(bl, z))));
            f2 = _mm_add_ps(f2, _mm_mul_ps(v1, _mm_cvtepi32_ps(_mm_unpacklo_epi16(bh, z))));
            f3 = _mm_add_ps(f3, _mm_mul_ps(v1, _mm_cvtepi32_ps(_mm_unpackhi_epi16(bh, z))));
        }
        if (acc) {
            f0 = _mm_add_ps(f0, _mm_loadu_ps(buf + k));
            f1 = _mm_add_ps(f1, _mm_loadu_ps(buf + k + 4));
            f2 = _mm_add_ps(f2, _mm_loadu_ps(buf + k + 8));
            f3 = _mm_add_ps(f3, _mm_loadu_ps(buf + k + 12));
        }
        _mm_storeu_ps(buf + k, f0);
        _mm_storeu_ps(buf + k + 4, f1);
        _mm_storeu_ps(buf + k + 8, f2);
        _mm_storeu_ps(buf + k + 12, f3);
    }
    rc_vacc_u8_c(r0 + k, r1 ? r1 + k : NULL, w0, w1, buf + k, m - k, acc);
}
#else
#define rc_vacc_u8 rc_vacc_u8_c
#endif

#endif /* ROICLASS_SIMD_H */
