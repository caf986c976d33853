# cython: language_level=3
"""Polygon masks: output samples whose source point lies outside the ROI's
polygon take the fill value (normalized like a pixel).

The edges come in output pixel coordinates (the polygon mapped through the
inverse of the ROI's affine map, done once per call before the GIL is
released), so each output row is a horizontal scanline at v + 0.5, and the
rule is GDAL's polygon rasterization (GDALdllImageFilledPolygon, what
rasterio.features.geometry_mask computes), ties included: an edge counts
when yc lies in [its lower y, its upper y); its crossing at x toggles every
sample u >= floor(x + 0.5) (inside = an odd count: centres in (x_left,
x_right]); a horizontal edge lying on the row and walked right to left
(GDAL's "bottom" edge) marks its samples floor(x2 + 0.5) .. floor(x1 + 0.5)
- 1 inside as well. A row costs one pass over its edges, an insertion sort
of its few crossings and the fill of the runs outside; rows with a
horizontal edge on them or over CROSS_CAP crossings take the general pass
(toggles of TILE samples at a time). No allocation: all on the stack.
"""
from libc.math cimport floor

from _interp cimport dst_t
from _params cimport Params, put, mix, MAX_BANDS, MAX_OUT_CHANNELS

cdef enum:
    TILE = 2048
    CROSS_CAP = 256  # crossings per row kept sorted on the stack; more: row_toggles


cdef inline void fill_run(dst_t* dst, const dst_t* value, int cout, int a, int b,
                          Py_ssize_t cstride, Py_ssize_t pstride) noexcept nogil:
    """Samples [a, b) of one output row take the normalized fill (per channel
    a constant run: contiguous in NCHW, which the compiler vectorizes)."""
    cdef int k, u
    cdef dst_t x
    cdef dst_t* d
    for k in range(cout):
        x = value[k]
        d = dst + k * cstride
        if pstride == 1:
            for u in range(a, b):
                d[u] = x
        else:
            for u in range(a, b):
                d[u * pstride] = x


cdef inline int first(double x, int t0, int t1) noexcept nogil:
    """floor(x + 0.5) (GDAL's rounding of a crossing) clamped to [t0, t1]."""
    cdef double g = floor(x + 0.5)
    if g <= t0:
        return t0
    if g >= t1:
        return t1
    return <int>g


cdef inline int row_crossings(const double* edges, Py_ssize_t ne, double yc, int w, int* cross,
                              int cap) noexcept nogil:
    """The row's crossings (first toggled sample, clamped to [0, w]), sorted,
    into cross; -1 when the row needs row_toggles (a horizontal edge on it,
    or more than cap crossings)."""
    cdef Py_ssize_t e
    cdef int n = 0, i, j, k
    cdef double x1, y1, x2, y2
    cdef const double* q
    for e in range(ne):
        q = edges + 4 * e
        y1 = q[1]
        y2 = q[3]
        if y1 == y2:
            if y1 == yc and q[0] > q[2]:
                return -1
            continue
        if (y1 > yc) == (y2 > yc):
            continue
        if n == cap:
            return -1
        if y1 < y2:  # from the lower end, as GDAL computes it
            x1 = q[0]
            x2 = q[2]
        else:
            x1 = q[2]
            x2 = q[0]
            y1, y2 = y2, y1
        k = first((yc - y1) * (x2 - x1) / (y2 - y1) + x1, 0, w)
        i = n  # insertion sort: a row crosses few edges
        while i > 0 and cross[i - 1] > k:
            cross[i] = cross[i - 1]
            i -= 1
        cross[i] = k
        n += 1
    return n


cdef inline void row_toggles(dst_t* dst, const dst_t* value, const Params* P, const double* edges,
                             Py_ssize_t ne, double yc, Py_ssize_t cstride, Py_ssize_t pstride) noexcept nogil:
    """One row, any number of crossings and GDAL's horizontal edges: toggles
    and burns TILE samples at a time."""
    cdef unsigned char flip[TILE + 1]
    cdef int burn[TILE + 1]  # horizontal edges on the row: +1 at the start, -1 past the end
    cdef Py_ssize_t e
    cdef int u, t0, t1, k, parity, run, start, burnt, depth
    cdef double x1, y1, x2, y2
    cdef const double* q
    t0 = 0
    while t0 < P.out_w:
        t1 = min(t0 + <int>TILE, P.out_w)
        for k in range(t1 - t0 + 1):
            flip[k] = 0
        parity = 0
        burnt = 0
        for e in range(ne):
            q = edges + 4 * e
            y1 = q[1]
            y2 = q[3]
            if y1 == y2:
                if y1 == yc and q[0] > q[2]:
                    if not burnt:
                        for k in range(t1 - t0 + 1):
                            burn[k] = 0
                        burnt = 1
                    burn[first(q[2], t0, t1) - t0] += 1
                    burn[first(q[0], t0, t1) - t0] -= 1
                continue
            if (y1 > yc) == (y2 > yc):
                continue
            if y1 < y2:
                x1 = q[0]
                x2 = q[2]
            else:
                x1 = q[2]
                x2 = q[0]
                y1, y2 = y2, y1
            k = first((yc - y1) * (x2 - x1) / (y2 - y1) + x1, t0, t1)
            if k == t0:
                parity ^= 1
            elif k < t1:
                flip[k - t0] ^= 1
        run = parity
        depth = 0
        start = -1  # the first outside sample of the current run
        for u in range(t0, t1):
            run ^= flip[u - t0]
            if burnt:
                depth += burn[u - t0]
            if not run and depth <= 0:
                if start < 0:
                    start = u
            elif start >= 0:
                fill_run(dst, value, P.cout, start, u, cstride, pstride)
                start = -1
        if start >= 0:
            fill_run(dst, value, P.cout, start, t1, cstride, pstride)
        t0 = t1


cdef inline void mask_rows(dst_t* out, const Params* P, const double* edges, Py_ssize_t ne,
                           int v0, int v1) noexcept nogil:
    """Rows [v0, v1) of one ROI's output (out: its slice of the batch)."""
    cdef int cross[CROSS_CAP]
    cdef float f[MAX_BANDS]
    cdef dst_t value[MAX_OUT_CHANNELS]
    cdef Py_ssize_t cstride, pstride
    cdef int v, k, n, i, prev, a, b
    cdef dst_t* dst
    for k in range(MAX_BANDS):
        f[k] = P.fill
    for k in range(P.cout):  # what store() writes for a fill pixel
        put(&value[k], (mix(P, k, f) - P.mean[k]) * P.inv_std[k])
    if P.nhwc:
        cstride = 1
        pstride = P.cout
    else:
        cstride = <Py_ssize_t>P.out_h * P.out_w
        pstride = 1
    for v in range(v0, v1):
        dst = out + (<Py_ssize_t>v * P.out_w) * pstride
        n = row_crossings(edges, ne, v + 0.5, P.out_w, cross, CROSS_CAP)
        if n < 0:
            row_toggles(dst, value, P, edges, ne, v + 0.5, cstride, pstride)
            continue
        # inside: [cross[0], cross[1]), [cross[2], cross[3]), ...; fill the rest
        prev = 0
        i = 0
        while i < n:
            a = cross[i]
            b = cross[i + 1] if i + 1 < n else P.out_w
            if a > prev:
                fill_run(dst, value, P.cout, prev, a, cstride, pstride)
            prev = max(prev, b)
            i += 2
        if prev < P.out_w:
            fill_run(dst, value, P.cout, prev, P.out_w, cstride, pstride)
