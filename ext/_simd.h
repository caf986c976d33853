/* Bilinear taps of 1-, 3- or 4-channel pixels (the coordinate passes that
 * feed them are in _coords.h).
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

#if defined(__AVX2__) && defined(__FMA__)
#define RC_BUILD_ISA "x86-64-v3"
#elif defined(__SSE4_1__)
#define RC_BUILD_ISA "x86-64-v2"
#elif defined(__SSE2__)
#define RC_BUILD_ISA "sse2"
#else
#define RC_BUILD_ISA "portable"
#endif

/* Asked of the running CPU, so the baseline build can tell whether the
 * x86-64-v3 one may be imported (importing it elsewhere would be SIGILL). */
static inline int rc_cpu_has_avx2_fma(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* One one-channel uint8 tap (top-left pixel at q0), as every build computes
 * it: the SIMD loops' tails and the portable build. */
static inline float rc_gray_tap(const uint8_t* q0, Py_ssize_t stride, float fx, float fy) {
    const uint8_t* q1 = q0 + stride;
    float t = q0[0] + fx * ((float)q0[1] - (float)q0[0]);
    float u = q1[0] + fx * ((float)q1[1] - (float)q1[0]);
    return t + fy * (u - t);
}

#if defined(__SSE2__)
#include <emmintrin.h>
#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

static inline __m128 rc_load4_u8(const uint8_t* p) {
    int32_t v;
    memcpy(&v, p, 4);
#if defined(__SSE4_1__)  /* pmovzxbd: load and widen in one instruction */
    return _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(v)));
#else
    __m128i z = _mm_setzero_si128();
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(v), z), z));
#endif
}

static inline __m128 rc_load4_u16(const uint16_t* p) {
#if defined(__SSE4_1__)
    return _mm_cvtepi32_ps(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i*)p)));
#else
    __m128i z = _mm_setzero_si128();
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i*)p), z));
#endif
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

/* float32 samples (generic images): the same lerps, 4 bands per tap */
static inline void rc_bilerp4_f32(const float* q0, const float* q1, int C, float fx, float fy, float* out) {
    __m128 r;
    RC_BILERP(_mm_loadu_ps, q0, q1, C, fx, fy, r);
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
#define RC_BILERP_PLANAR(T, O, load, name)                                                 \
static inline void name(const char* img, const O* off, Py_ssize_t stride, int C,  \
                        const float* wx, const float* wy, int n, float* smp, int ld) {    \
    ptrdiff_t i = 0;                                                                         \
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
RC_BILERP_PLANAR(uint16_t, Py_ssize_t, rc_load4_u16, rc_bilerp_planar_u16)
/* the same with 32-bit offsets (from rc_coords_row / rc_coords_local) */
RC_BILERP_PLANAR(uint16_t, int32_t, rc_load4_u16, rc_bilerp_planar32_u16)
RC_BILERP_PLANAR(uint8_t, Py_ssize_t, rc_load4_u8, rc_bilerp_planar_u8_sse)
RC_BILERP_PLANAR(uint8_t, int32_t, rc_load4_u8, rc_bilerp_planar32_u8_sse)

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* The x86-64-v3 build: 8 uint8 taps per step, two per register (tap k in
 * the low lane, tap k + 4 in the high one), FMA lerps, and one in-lane 4x4
 * transpose that leaves channel c of taps 0-7 in order. About 16
 * instructions per tap instead of 24. */
static inline __m256 rc_load4x2_u8(const uint8_t* p, const uint8_t* q) {
    int32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, q, 4);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(a), b, 1)));
}

#define RC_LERP8(a, b, f) _mm256_fmadd_ps((f), _mm256_sub_ps((b), (a)), (a))

#define RC_BILERP_PLANAR_AVX2(O, name, tail)                                                  \
static inline void name(const char* img, const O* off, Py_ssize_t stride, int C,              \
                        const float* wx, const float* wy, int n, float* smp, int ld) {        \
    ptrdiff_t i = 0;                                                                         \
    for (; i + 8 <= n; i += 8) {                                                             \
        const __m256 fx8 = _mm256_loadu_ps(wx + i), fy8 = _mm256_loadu_ps(wy + i);           \
        __m256 r[4];                                                                         \
        for (int k = 0; k < 4; k++) {                                                        \
            const uint8_t* p = (const uint8_t*)(img + off[i + k]);                           \
            const uint8_t* q = (const uint8_t*)(img + off[i + k + 4]);                       \
            const __m256i idx = _mm256_setr_epi32(k, k, k, k, k + 4, k + 4, k + 4, k + 4);   \
            __m256 fx = _mm256_permutevar8x32_ps(fx8, idx);                                  \
            __m256 fy = _mm256_permutevar8x32_ps(fy8, idx);                                  \
            __m256 t = RC_LERP8(rc_load4x2_u8(p, q), rc_load4x2_u8(p + C, q + C), fx);       \
            __m256 u = RC_LERP8(rc_load4x2_u8(p + stride, q + stride),                       \
                                rc_load4x2_u8(p + stride + C, q + stride + C), fx);          \
            r[k] = RC_LERP8(t, u, fy);                                                       \
        }                                                                                    \
        __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);     \
        __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);     \
        _mm256_storeu_ps(smp + i, _mm256_shuffle_ps(t0, t2, 0x44));                          \
        _mm256_storeu_ps(smp + ld + i, _mm256_shuffle_ps(t0, t2, 0xEE));                     \
        _mm256_storeu_ps(smp + 2 * ld + i, _mm256_shuffle_ps(t1, t3, 0x44));                 \
        _mm256_storeu_ps(smp + 3 * ld + i, _mm256_shuffle_ps(t1, t3, 0xEE));                 \
    }                                                                                        \
    if (i < n) tail(img, off + i, stride, C, wx + i, wy + i, n - i, smp + i, ld);            \
}
RC_BILERP_PLANAR_AVX2(Py_ssize_t, rc_bilerp_planar_u8, rc_bilerp_planar_u8_sse)
RC_BILERP_PLANAR_AVX2(int32_t, rc_bilerp_planar32_u8, rc_bilerp_planar32_u8_sse)
#else
#define rc_bilerp_planar_u8 rc_bilerp_planar_u8_sse
#define rc_bilerp_planar32_u8 rc_bilerp_planar32_u8_sse
#endif
/* One-channel uint8 taps, 4 pixels per step: a tap's two horizontal
 * neighbours are one 16-bit load per row (pinsrw), split after widening
 * (low byte = left pixel: x86 is little-endian). smp[i] as the scalar loop. */
static inline uint32_t rc_ld16(const uint8_t* p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* taps at p0..p3: row-0 pairs in words 0-3, row-1 pairs in words 4-7 */
static inline __m128i rc_gray_pairs(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2,
                                    const uint8_t* p3, Py_ssize_t stride) {
    __m128i v = _mm_cvtsi32_si128((int)(rc_ld16(p0) | (rc_ld16(p1) << 16)));
    v = _mm_insert_epi16(v, (int)rc_ld16(p2), 2);
    v = _mm_insert_epi16(v, (int)rc_ld16(p3), 3);
    v = _mm_insert_epi16(v, (int)rc_ld16(p0 + stride), 4);
    v = _mm_insert_epi16(v, (int)rc_ld16(p1 + stride), 5);
    v = _mm_insert_epi16(v, (int)rc_ld16(p2 + stride), 6);
    return _mm_insert_epi16(v, (int)rc_ld16(p3 + stride), 7);
}
#define RC_GRAY_PAIRS(img, off, i, stride) \
    rc_gray_pairs(img + off[i], img + off[(i) + 1], img + off[(i) + 2], img + off[(i) + 3], stride)

#if defined(__AVX2__) && defined(__FMA__)
/* x86-64-v3: 8 taps per step, the arithmetic in one 256-bit register */
#define RC_GRAY_WIDE(img, off, stride)                                                      \
    for (; i + 8 <= n; i += 8) {                                                           \
        const __m256i z8 = _mm256_setzero_si256(), lo8 = _mm256_set1_epi32(0xff);          \
        __m256i v = _mm256_inserti128_si256(                                               \
            _mm256_castsi128_si256(RC_GRAY_PAIRS(img, off, i, stride)),                    \
            RC_GRAY_PAIRS(img, off, i + 4, stride), 1);                                    \
        __m256i r0 = _mm256_unpacklo_epi16(v, z8), r1 = _mm256_unpackhi_epi16(v, z8);      \
        __m256 a = _mm256_cvtepi32_ps(_mm256_and_si256(r0, lo8));                          \
        __m256 b = _mm256_cvtepi32_ps(_mm256_srli_epi32(r0, 8));                           \
        __m256 c = _mm256_cvtepi32_ps(_mm256_and_si256(r1, lo8));                          \
        __m256 d = _mm256_cvtepi32_ps(_mm256_srli_epi32(r1, 8));                           \
        __m256 fx = _mm256_loadu_ps(wx + i), fy = _mm256_loadu_ps(wy + i);                 \
        __m256 t = RC_LERP8(a, b, fx), u = RC_LERP8(c, d, fx);                             \
        _mm256_storeu_ps(smp + i, RC_LERP8(t, u, fy));                                     \
    }
#else
#define RC_GRAY_WIDE(img, off, stride)
#endif

#define RC_GRAY_U8(O, name)                                                                 \
static inline void name(const uint8_t* img, const O* off, Py_ssize_t stride, const float* wx,   \
                        const float* wy, int n, float* smp) {                                \
    ptrdiff_t i = 0;  /* (an int index costs a sign extension per tap address) */         \
    const __m128i z = _mm_setzero_si128(), lo = _mm_set1_epi32(0xff);                      \
    RC_GRAY_WIDE(img, off, stride)                                                         \
    for (; i + 4 <= n; i += 4) {                                                           \
        __m128i v = RC_GRAY_PAIRS(img, off, i, stride);                                    \
        __m128i r0 = _mm_unpacklo_epi16(v, z), r1 = _mm_unpackhi_epi16(v, z);              \
        __m128 a = _mm_cvtepi32_ps(_mm_and_si128(r0, lo));                                 \
        __m128 b = _mm_cvtepi32_ps(_mm_srli_epi32(r0, 8));                                 \
        __m128 c = _mm_cvtepi32_ps(_mm_and_si128(r1, lo));                                 \
        __m128 d = _mm_cvtepi32_ps(_mm_srli_epi32(r1, 8));                                 \
        __m128 fx = _mm_loadu_ps(wx + i), fy = _mm_loadu_ps(wy + i);                       \
        __m128 t = _mm_add_ps(a, _mm_mul_ps(fx, _mm_sub_ps(b, a)));                        \
        __m128 u = _mm_add_ps(c, _mm_mul_ps(fx, _mm_sub_ps(d, c)));                        \
        _mm_storeu_ps(smp + i, _mm_add_ps(t, _mm_mul_ps(fy, _mm_sub_ps(u, t))));           \
    }                                                                                      \
    for (; i < n; i++) smp[i] = rc_gray_tap(img + off[i], stride, wx[i], wy[i]);          \
}
RC_GRAY_U8(Py_ssize_t, rc_bilerp_gray_u8)
RC_GRAY_U8(int32_t, rc_bilerp_gray32_u8)

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
RC_SCALAR(float, rc_bilerp4w_f32, 0)
#define rc_bilerp4_f32(q0, q1, C, fx, fy, out) rc_bilerp4w_f32(q0, q1, C, fx, fy, 0.0f, out)
#define rc_bilerp4_u8(q0, q1, C, fx, fy, out) rc_bilerp4w_u8(q0, q1, C, fx, fy, 0.0f, out)
#define rc_bilerp4_u16(q0, q1, C, fx, fy, out) rc_bilerp4w_u16(q0, q1, C, fx, fy, 0.0f, out)

#define RC_PLANAR_SCALAR(T, O, name)                                                       \
static inline void name(const char* img, const O* off, Py_ssize_t stride, int C,  \
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
RC_PLANAR_SCALAR(uint8_t, Py_ssize_t, rc_bilerp_planar_u8)
RC_PLANAR_SCALAR(uint16_t, Py_ssize_t, rc_bilerp_planar_u16)
RC_PLANAR_SCALAR(uint8_t, int32_t, rc_bilerp_planar32_u8)
RC_PLANAR_SCALAR(uint16_t, int32_t, rc_bilerp_planar32_u16)

#define RC_GRAY_SCALAR(O, name)                                                             \
static inline void name(const uint8_t* img, const O* off, Py_ssize_t stride, const float* wx,   \
                        const float* wy, int n, float* smp) {                                \
    for (int i = 0; i < n; i++) smp[i] = rc_gray_tap(img + off[i], stride, wx[i], wy[i]); \
}
RC_GRAY_SCALAR(Py_ssize_t, rc_bilerp_gray_u8)
RC_GRAY_SCALAR(int32_t, rc_bilerp_gray32_u8)

#endif

#include "_coords.h"

/* d[i] = (s[i] - mean) * inv for one output plane (NCHW float32); restrict
 * spares the vectorized loop its aliasing checks and scalar fallback. */
static inline void rc_norm_plane(float* __restrict d, const float* __restrict s, int n, float mean,
                                 float inv) {
    for (int i = 0; i < n; i++) d[i] = (s[i] - mean) * inv;
}

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
