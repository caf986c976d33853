/* The coordinate passes of the tap kernels (_simd.h): for each output pixel
 * of a chunk, the byte offset of its top-left tap and its bilinear weights.
 * SSE2 (4 per op), AVX2 + FMA in the x86-64-v3 build (8 per op), plain C
 * otherwise. Included by _simd.h.
 */
#ifndef ROICLASS_COORDS_H
#define ROICLASS_COORDS_H

#include <stdint.h>
#include <Python.h>  /* Py_ssize_t */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#if defined(__SSE2__)
/* rc_coords_row may use float32 coordinates, 4 pixels per op, relative to
 * the chunk's integer base (the floor of its smaller end per axis): they stay
 * small (< 256 + 2 px from the base: 64 steps of up to 4 px, 128 of up to
 * 2), so the fractions keep ~1e-5 of a pixel, and the local byte offsets
 * are exact in float. */
static inline int rc_local_ok(double a0, double a3, int n, Py_ssize_t stride, int csz) {
    double ax = a0 < 0 ? -a0 : a0, ay = a3 < 0 ? -a3 : a3;
    return ax * n <= 256.0 && ay * n <= 256.0 &&
           (ay * n + 2.0) * (double)stride + (ax * n + 2.0) * csz < 8388608.0;
}
#endif

/* The coordinate pass of the interior kernel: off[i] (bytes, 32-bit: the
 * caller checks that the image fits), wx[i], wy[i] of pixel i at
 * (bx + a0 (u0 + i), by + a3 (u0 + i)), clamped to [0, xmax] x [0, ymax]
 * (a memory guard only). Float32 relative to the chunk's base, 4 pixels per
 * op, when rc_local_ok; else SSE2 doubles, 2 per op (same arithmetic as the
 * scalar loop). A separate pass, not fused with the taps: fused, fewer tap
 * loads were in flight and it measured slower despite fewer instructions. */
static inline void rc_coords_row(double bx, double by, double a0, double a3, int u0, int n,
                                 int xmax, int ymax, Py_ssize_t stride, int csz, int32_t* off,
                                 float* wx, float* wy) {
    int i = 0;
#if defined(__SSE2__)
    if (n > 0 && rc_local_ok(a0, a3, n, stride, csz)) {
        /* float32, relative to the chunk's base as in rc_local_* */
        double xs = bx + a0 * u0, xe = bx + a0 * (u0 + n - 1);
        double ys = by + a3 * u0, ye = by + a3 * (u0 + n - 1);
        double xl = xs < xe ? xs : xe, yl = ys < ye ? ys : ye;
        int x0 = (int)(xl < 0.0 ? 0.0 : xl > xmax ? (double)xmax : xl);
        int y0 = (int)(yl < 0.0 ? 0.0 : yl > ymax ? (double)ymax : yl);
        const __m128i vbase = _mm_set1_epi32((int32_t)(y0 * stride + x0 * csz));
        const __m128 zf = _mm_setzero_ps();
        const __m128 fxm = _mm_set1_ps((float)(xmax - x0)), fym = _mm_set1_ps((float)(ymax - y0));
        const __m128 fs = _mm_set1_ps((float)stride), fc = _mm_set1_ps((float)csz);
        const __m128 lx0 = _mm_set1_ps((float)(xs - x0)), ly0 = _mm_set1_ps((float)(ys - y0));
        const __m128 fa0 = _mm_set1_ps((float)a0), fa3 = _mm_set1_ps((float)a3);
        __m128 iv = _mm_set_ps(3.0f, 2.0f, 1.0f, 0.0f);
#if defined(__AVX2__) && defined(__FMA__)
        {  /* the same, 8 per op */
            const __m256i vb8 = _mm256_set1_epi32((int32_t)(y0 * stride + x0 * csz));
            const __m256 z8 = _mm256_setzero_ps();
            const __m256 xm8 = _mm256_set1_ps((float)(xmax - x0)), ym8 = _mm256_set1_ps((float)(ymax - y0));
            const __m256 s8 = _mm256_set1_ps((float)stride), c8 = _mm256_set1_ps((float)csz);
            const __m256 lx8 = _mm256_set1_ps((float)(xs - x0)), ly8 = _mm256_set1_ps((float)(ys - y0));
            const __m256 a08 = _mm256_set1_ps((float)a0), a38 = _mm256_set1_ps((float)a3);
            __m256 iv8 = _mm256_setr_ps(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f);
            for (; i + 8 <= n; i += 8) {
                __m256 x = _mm256_fmadd_ps(a08, iv8, lx8);
                __m256 y = _mm256_fmadd_ps(a38, iv8, ly8);
                __m256 ix = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(x, z8), xm8)));
                __m256 iy = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(y, z8), ym8)));
                iv8 = _mm256_add_ps(iv8, _mm256_set1_ps(8.0f));
                _mm256_storeu_ps(wx + i, _mm256_sub_ps(x, ix));
                _mm256_storeu_ps(wy + i, _mm256_sub_ps(y, iy));
                _mm256_storeu_si256((__m256i*)(off + i), _mm256_add_epi32(vb8,
                    _mm256_cvttps_epi32(_mm256_fmadd_ps(iy, s8, _mm256_mul_ps(ix, c8)))));
            }
            iv = _mm_add_ps(iv, _mm_set1_ps((float)i));
        }
#endif
        for (; i + 4 <= n; i += 4) {
            __m128 x = _mm_add_ps(lx0, _mm_mul_ps(fa0, iv));
            __m128 y = _mm_add_ps(ly0, _mm_mul_ps(fa3, iv));
            __m128 ix = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(x, zf), fxm)));
            __m128 iy = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(y, zf), fym)));
            iv = _mm_add_ps(iv, _mm_set1_ps(4.0f));
            _mm_storeu_ps(wx + i, _mm_sub_ps(x, ix));
            _mm_storeu_ps(wy + i, _mm_sub_ps(y, iy));
            _mm_storeu_si128((__m128i*)(off + i), _mm_add_epi32(vbase,
                _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(iy, fs), _mm_mul_ps(ix, fc)))));
        }
    }
    if (i == n) return;  /* the usual case: skip the setup of the passes below */
    const __m128d zero = _mm_setzero_pd(), vxm = _mm_set1_pd(xmax), vym = _mm_set1_pd(ymax);
    const __m128d vs = _mm_set1_pd((double)stride), vc = _mm_set1_pd((double)csz);
    const __m128d vbx = _mm_set1_pd(bx), vby = _mm_set1_pd(by), va0 = _mm_set1_pd(a0);
    const __m128d va3 = _mm_set1_pd(a3), two = _mm_set1_pd(2.0);
    __m128d u = _mm_set_pd(u0 + i + 1.0, (double)(u0 + i));
    for (; i + 2 <= n; i += 2) {
        __m128d x = _mm_add_pd(vbx, _mm_mul_pd(va0, u));
        __m128d y = _mm_add_pd(vby, _mm_mul_pd(va3, u));
        __m128d ix = _mm_cvtepi32_pd(_mm_cvttpd_epi32(_mm_min_pd(_mm_max_pd(x, zero), vxm)));
        __m128d iy = _mm_cvtepi32_pd(_mm_cvttpd_epi32(_mm_min_pd(_mm_max_pd(y, zero), vym)));
        u = _mm_add_pd(u, two);
        _mm_storel_pi((__m64*)(wx + i), _mm_cvtpd_ps(_mm_sub_pd(x, ix)));
        _mm_storel_pi((__m64*)(wy + i), _mm_cvtpd_ps(_mm_sub_pd(y, iy)));
        _mm_storel_epi64((__m128i*)(off + i),
                         _mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(iy, vs), _mm_mul_pd(ix, vc))));
    }
#endif
    for (; i < n; i++) {
        double x = bx + a0 * (u0 + i), y = by + a3 * (u0 + i);
        int ix = (int)(x < 0.0 ? 0.0 : x > xmax ? (double)xmax : x);
        int iy = (int)(y < 0.0 ? 0.0 : y > ymax ? (double)ymax : y);
        wx[i] = (float)(x - ix);
        wy[i] = (float)(y - iy);
        off[i] = (int32_t)(iy * stride + ix * csz);
    }
}

/* The coordinate pass of the supersampling taps: pixel i at
 * (lx[i] + ox, ly[i] + oy), float32 pixels relative to the chunk's base
 * pixel at byte offset base_off (small, so precise: see rc_local_ok), clamped
 * to [0, xmax] x [0, ymax] in those local pixels. */
static inline void rc_coords_local(const float* lx, const float* ly, float ox, float oy, int n,
                                   float xmax, float ymax, Py_ssize_t stride, int csz,
                                   int32_t base_off, int32_t* off, float* wx, float* wy) {
    int i = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps(), vxm = _mm_set1_ps(xmax), vym = _mm_set1_ps(ymax);
    const __m128 vs = _mm_set1_ps((float)stride), vc = _mm_set1_ps((float)csz);
    const __m128 vox = _mm_set1_ps(ox), voy = _mm_set1_ps(oy);
    const __m128i vb = _mm_set1_epi32(base_off);
#if defined(__AVX2__) && defined(__FMA__)
    {  /* the same, 8 per op */
        const __m256 z8 = _mm256_setzero_ps(), xm8 = _mm256_set1_ps(xmax), ym8 = _mm256_set1_ps(ymax);
        const __m256 s8 = _mm256_set1_ps((float)stride), c8 = _mm256_set1_ps((float)csz);
        const __m256 ox8 = _mm256_set1_ps(ox), oy8 = _mm256_set1_ps(oy);
        const __m256i vb8 = _mm256_set1_epi32(base_off);
        for (; i + 8 <= n; i += 8) {
            __m256 x = _mm256_add_ps(_mm256_loadu_ps(lx + i), ox8);
            __m256 y = _mm256_add_ps(_mm256_loadu_ps(ly + i), oy8);
            __m256 ix = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(x, z8), xm8)));
            __m256 iy = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(y, z8), ym8)));
            _mm256_storeu_ps(wx + i, _mm256_sub_ps(x, ix));
            _mm256_storeu_ps(wy + i, _mm256_sub_ps(y, iy));
            _mm256_storeu_si256((__m256i*)(off + i), _mm256_add_epi32(vb8,
                _mm256_cvttps_epi32(_mm256_fmadd_ps(iy, s8, _mm256_mul_ps(ix, c8)))));
        }
    }
#endif
    for (; i + 4 <= n; i += 4) {
        __m128 x = _mm_add_ps(_mm_loadu_ps(lx + i), vox);
        __m128 y = _mm_add_ps(_mm_loadu_ps(ly + i), voy);
        __m128 ix = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(x, zero), vxm)));
        __m128 iy = _mm_cvtepi32_ps(_mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(y, zero), vym)));
        _mm_storeu_ps(wx + i, _mm_sub_ps(x, ix));
        _mm_storeu_ps(wy + i, _mm_sub_ps(y, iy));
        _mm_storeu_si128((__m128i*)(off + i), _mm_add_epi32(vb,
            _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(iy, vs), _mm_mul_ps(ix, vc)))));
    }
#endif
    for (; i < n; i++) {
        float x = lx[i] + ox, y = ly[i] + oy;
        int ix = (int)(x < 0.0f ? 0.0f : x > xmax ? xmax : x);
        int iy = (int)(y < 0.0f ? 0.0f : y > ymax ? ymax : y);
        wx[i] = x - (float)ix;
        wy[i] = y - (float)iy;
        off[i] = base_off + (int32_t)(iy * stride + ix * csz);
    }
}

#endif /* ROICLASS_COORDS_H */
