# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False, language_level=3
"""Fused rotated-ROI crop + resample + channel map + normalization, written
straight into a slice of the batch tensor. Every check happens here, before
the GIL is released; the kernels (_kernel.pxd, _interp.pxd) never allocate.
"""
import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport isfinite, fabs
from libc.stdint cimport uint8_t, uint16_t
from cpython.mem cimport PyMem_Malloc, PyMem_Free

from _geometry cimport roi_to_affine, RESIZE_STRETCH, RESIZE_LETTERBOX, RESIZE_CENTER_CROP
from _interp cimport src_t, dst_t, BORDER_CONSTANT, BORDER_REPLICATE
from _kernel cimport warp_band
from _generic cimport gsrc_t, generic_band
from _mask cimport mask_rows
from _mirror cimport mirror_rows
from _params cimport Params, MAX_OUT_CHANNELS, MAX_BANDS

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define ROICLASS_HAVE_OPENMP 1
    static int roiclass_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define ROICLASS_HAVE_OPENMP 0
    static int roiclass_max_threads(void) { return 1; }
    #endif
    """
    int ROICLASS_HAVE_OPENMP
    int roiclass_max_threads() noexcept nogil

cdef extern from "_simd.h":
    const char* RC_BUILD_ISA
    int rc_cpu_has_avx2_fma() noexcept nogil



def have_openmp():
    """Whether this build runs prange with OpenMP (else num_threads is ignored).
    (A function: the name HAVE_OPENMP is a Cython compile-time constant here.)"""
    return bool(ROICLASS_HAVE_OPENMP)


def build_isa():
    """The instruction set this build was compiled for: "x86-64-v3" (AVX2 +
    FMA), "x86-64-v2" (SSE4.1), "sse2" or "portable"."""
    return RC_BUILD_ISA.decode()


def cpu_has_avx2_fma():
    """Whether this CPU runs the x86-64-v3 build (asked of the CPU itself)."""
    return bool(rc_cpu_has_avx2_fma())

LUMA_RGB = -1
LUMA_BGR = -2
RESIZE_MODES = ("stretch", "letterbox", "center_crop")
BORDER_MODES = ("constant", "replicate")
LAYOUTS = ("NCHW", "NHWC")
# Coordinates beyond this are rejected: no image is that large, and it keeps
# every intermediate well inside int range.
MAX_COORD = 1 << 24
# Output pixels per OpenMP thread at least (about 50-100 us of work).
cdef Py_ssize_t MIN_PIXELS_PER_THREAD = 16384

_BT601 = (0.299, 0.587, 0.114)


def max_threads():
    """Threads num_threads=0 means (1 in a build without OpenMP)."""
    return roiclass_max_threads()


cdef int _choice(str field, object value, tuple allowed) except -1:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return allowed.index(value)


cdef int _check_crop(crop_fraction) except -1:
    if not isinstance(crop_fraction, (int, float, np.integer, np.floating)) \
            or not (0.0 < crop_fraction <= 1.0):
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")
    return 0


cdef _check_image(image):
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8 and image.dtype != np.uint16 and image.dtype != np.float32:
        raise TypeError(f"image.dtype must be uint8, uint16 or float32 (native byte order), got {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    cdef Py_ssize_t isz = image.itemsize
    cdef Py_ssize_t C = image.shape[2] if image.ndim == 3 else 1
    if C < 1 or C > MAX_BANDS:
        raise ValueError(f"image channels must be 1..{MAX_BANDS}, got {C}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if (image.ndim == 3 and image.strides[2] != isz) or image.strides[1] != C * isz:
        raise ValueError(f"image pixels within a row must be contiguous, got strides {image.strides}")
    if image.strides[0] < image.shape[1] * C * isz:
        raise ValueError(f"image row stride {image.strides[0]} is smaller than a row "
                         f"({image.shape[1]} x {C} x {isz} = {image.shape[1] * C * isz} bytes)")
    return C


cdef _check_out(out, Py_ssize_t n, int nhwc):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32 and out.dtype != np.float16:
        raise TypeError(f"out.dtype must be float32 or float16 (native byte order), got {out.dtype}")
    if out.ndim != 4:
        raise ValueError(f"out must be 4-D (N, C, H, W) or (N, H, W, C), got shape {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (a slice batch[k:k+N] of a C-contiguous batch is)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if out.shape[0] != n:
        raise ValueError(f"out.shape[0] must equal the number of ROIs ({n}), got {out.shape[0]}")
    cout, oh, ow = (out.shape[3], out.shape[1], out.shape[2]) if nhwc else out.shape[1:]
    if cout < 1 or cout > MAX_OUT_CHANNELS:
        raise ValueError(f"out channels must be 1..{MAX_OUT_CHANNELS}, got {cout}")
    if oh < 1 or ow < 1:
        raise ValueError(f"out height and width must be >= 1, got {oh} x {ow}")
    return cout, oh, ow


def default_channel_map(int c_in, int c_out):
    """The channel map used when none is given (see preprocess_rois)."""
    if c_in == c_out:
        return list(range(c_in))
    if c_in == 1:
        return [0] * c_out
    if c_out == 1:
        return [LUMA_RGB]
    if c_in == 4 and c_out == 3:
        return [0, 1, 2]
    raise ValueError(f"channel_map is required to map {c_in} source channels to {c_out}")


cdef _fill_channels(Params* P, channel_map, mean, std):
    cdef int k, c, cin = P.C, cout = P.cout
    cmap = default_channel_map(cin, cout) if channel_map is None else list(channel_map)
    if len(cmap) != cout:
        raise ValueError(f"channel_map must have one entry per output channel ({cout}), got {len(cmap)}")
    means = _per_channel("mean", mean, 0.0, cout)
    P.pick = 1
    stds = _per_channel("std", std, 1.0, cout)
    for k in range(cout):
        m = cmap[k]
        if not isinstance(m, (int, np.integer)) or not (-2 <= m < cin):
            raise ValueError(f"channel_map[{k}] must be a source channel 0..{cin - 1}, "
                             f"LUMA_RGB (-1) or LUMA_BGR (-2), got {m!r}")
        if m < 0 and cin < 3:
            raise ValueError(f"channel_map[{k}] = {m}: luma needs 3 or 4 source channels, image has {cin}")
        if m < 0:
            P.pick = 0
        if stds[k] == 0.0 or not isfinite(stds[k]):
            raise ValueError(f"std[{k}] must be finite and non-zero, got {stds[k]}")
        for c in range(4):
            P.wmat[k][c] = 0.0
        P.cmap[k] = m
        if m >= 0:
            P.wmat[k][m] = 1.0
        else:
            for c in range(3):
                P.wmat[k][c if m == LUMA_RGB else 2 - c] = _BT601[c]
        P.mean[k] = means[k]
        P.inv_std[k] = 1.0 / stds[k]
    # the source channels the output reads (generic images sample only these)
    need = sorted(set(m for m in cmap if m >= 0)) if P.pick else list(range(min(cin, 4)))
    P.nneed = len(need)
    for k in range(P.nneed):
        P.need[k] = need[k]


cdef list _per_channel(str field, value, double default, int n):
    if value is None:
        return [default] * n
    cdef list vals
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "fiu":
        vals = value.reshape(-1).tolist()  # the common case, without a float64 copy
    else:
        vals = np.asarray(value, dtype=np.float64).reshape(-1).tolist()
    cdef double x
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n:
        raise ValueError(f"{field} must have one value per output channel ({n}), got {len(vals)}")
    for x in vals:
        if not isfinite(x):
            raise ValueError(f"{field} must be finite, got {vals}")
    return vals


cdef Py_ssize_t _first_bad(const double* p, Py_ssize_t n, int ncols, int test, double lim) noexcept nogil:
    """Index of the first row failing `test` (0: finite, 1: within lim,
    2: width and height, columns 2 and 3 of an ROI row, > 0), or -1. Plain
    loops: numpy's per-call overhead was most of a one-ROI call."""
    cdef Py_ssize_t i
    cdef int j
    cdef double x
    for i in range(n):
        for j in range(ncols):
            x = p[i * ncols + j]
            if test == 0 and not isfinite(x):
                return i
            if test == 1 and fabs(x) > lim:
                return i
            if test == 2 and (j == 2 or j == 3) and x <= 0.0:
                return i
    return -1


cdef _check_rois(rois, int ncols, str what, int flags=0):
    """(N, ncols) float64 rows, checked; flags: (N, 6) ROI rows (column 5 the
    flags) are accepted too."""
    try:
        arr = np.ascontiguousarray(rois, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be an array-like of numbers: {exc}") from None
    if ncols == 5 and arr.ndim == 2 and arr.shape[0] == 0:
        arr = arr.reshape(0, 5)
    if arr.ndim != 2 or (arr.shape[1] != ncols and not (flags and arr.shape[1] == 6)):
        also = " or (N, 6) (column 5: flags, bit 0 = mirror)" if flags else ""
        raise ValueError(f"{what} must have shape (N, {ncols}){also}, got {arr.shape}")
    cdef const double* p = <const double*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t n = arr.shape[0]
    ncols = arr.shape[1]
    cdef Py_ssize_t bad = _first_bad(p, n, ncols, 0, MAX_COORD)
    if bad >= 0:
        raise ValueError(f"{what}[{bad}] must be finite, got {arr[bad].tolist()}")
    bad = _first_bad(p, n, ncols, 1, MAX_COORD)
    if bad >= 0:
        raise ValueError(f"{what}[{bad}] values must be within +-{MAX_COORD}, got {arr[bad].tolist()}")
    bad = _first_bad(p, n, ncols, 2, MAX_COORD) if what != "matrices" else -1
    if bad >= 0:
        raise ValueError(f"{what}[{bad}] width and height must be > 0, got {arr[bad].tolist()}")
    return arr


cdef tuple _roi_rows(rois):
    """The (N, 5) geometry of (N, 5) or (N, 6) ROI rows and the flags as
    uint8 (None when no row has one). Flags: 0, or 1 (bit 0: mirror)."""
    arr = _check_rois(rois, 5, "rois", 1)
    if arr.shape[1] == 5:
        return arr, None
    cdef const double* p = <const double*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t i, n = arr.shape[0]
    flags = np.zeros(n, dtype=np.uint8)
    cdef unsigned char[::1] f = flags
    for i in range(n):
        if p[6 * i + 5] != 0.0 and p[6 * i + 5] != 1.0:
            raise ValueError(f"rois[{i}, 5] (flags) must be 0 or 1 (bit 0: mirror; no other bit "
                             f"is defined), got {p[6 * i + 5]!r}")
        f[i] = <unsigned char>p[6 * i + 5]
    return np.ascontiguousarray(arr[:, :5]), (flags if flags.any() else None)


cdef void _unit(const gsrc_t* img, dst_t* out, const Params* P, const double* geo, int from_rois,
                int mode, double crop, Py_ssize_t n, int v0, int v1) noexcept nogil:
    cdef double A[6]
    cdef int box[4]
    cdef int i
    cdef dst_t* dst = out + n * (<Py_ssize_t>P.cout * P.out_h * P.out_w)
    if from_rois:
        roi_to_affine(geo + 5 * n, P.out_w, P.out_h, mode, crop, A, box)
    else:
        for i in range(6):
            A[i] = geo[6 * n + i]
        box[0] = 0; box[1] = 0; box[2] = P.out_w; box[3] = P.out_h
    if gsrc_t is float:
        generic_band(img, dst, P, A, box, v0, v1)
    elif P.generic:
        generic_band(img, dst, P, A, box, v0, v1)
    elif gsrc_t is uint8_t:
        warp_band(<const uint8_t*>img, dst, P, A, box, v0, v1)
    else:
        warp_band(<const uint16_t*>img, dst, P, A, box, v0, v1)
    # the polygon mask, on the rows just written (still in cache)
    if P.poly_off != NULL and P.poly_off[n + 1] > P.poly_off[n]:
        mask_rows(dst, P, P.poly + 4 * P.poly_off[n], P.poly_off[n + 1] - P.poly_off[n], v0, v1)
    # the mirror flag: the finished rows (mask included) reversed in place
    if P.mirror != NULL and P.mirror[n]:
        mirror_rows(dst, P, v0, v1)


cdef void _run(const gsrc_t* img, dst_t* out, const Params* P, const double* geo, int from_rois,
               int mode, double crop, Py_ssize_t n_rois, int band, int nthreads) noexcept nogil:
    cdef Py_ssize_t bands = (P.out_h + band - 1) // band
    cdef Py_ssize_t unit, n
    cdef int b
    if nthreads == 1:  # no parallel region to enter (a few us per call)
        for n in range(n_rois):
            _unit(img, out, P, geo, from_rois, mode, crop, n, 0, P.out_h)
        return
    for unit in prange(n_rois * bands, num_threads=nthreads, schedule="dynamic"):
        n = unit // bands
        b = <int>(unit % bands)
        _unit(img, out, P, geo, from_rois, mode, crop, n, b * band, min(P.out_h, (b + 1) * band))


ctypedef struct Work:
    # One call's buffers and thread plan, fixed before the GIL is released.
    const void* img
    void* dst
    const double* geo
    Py_ssize_t n
    int band, nthreads, src, f32   # src: 0 uint8, 1 uint16, 2 float32


cdef int _plan(Work* w, const Params* P, image, out, geo_arr, int num_threads) except -1:
    cdef int nthreads, per_roi
    w.n = geo_arr.shape[0]
    w.geo = <const double*>cnp.PyArray_DATA(geo_arr)
    w.img = cnp.PyArray_DATA(image)
    w.dst = cnp.PyArray_DATA(out)
    w.src = 0 if image.dtype == np.uint8 else (1 if image.dtype == np.uint16 else 2)
    w.f32 = out.dtype == np.float32
    w.nthreads = 1
    w.band = P.out_h
    if w.n == 0:
        return 0
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
    nthreads = roiclass_max_threads() if num_threads == 0 else num_threads
    # a thread needs enough output to amortize waking it (~10-20 us)
    nthreads = max(1, min(nthreads, (w.n * P.out_h * P.out_w) // MIN_PIXELS_PER_THREAD))
    if not ROICLASS_HAVE_OPENMP:
        nthreads = 1
    # Few ROIs and several threads: split each ROI into row bands.
    per_roi = 1 if (nthreads == 1 or w.n >= 2 * nthreads) else min(P.out_h, (4 * nthreads + w.n - 1) // w.n)
    w.band = (P.out_h + per_roi - 1) // per_roi
    w.nthreads = nthreads
    return 0


cdef void _execute(const Work* w, const Params* P, int from_rois, int mode, double crop) noexcept nogil:
    if w.n == 0:
        return
    if w.src == 0 and w.f32:
        _run(<const uint8_t*>w.img, <float*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)
    elif w.src == 0:
        _run(<const uint8_t*>w.img, <uint16_t*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)
    elif w.src == 1 and w.f32:
        _run(<const uint16_t*>w.img, <float*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)
    elif w.src == 1:
        _run(<const uint16_t*>w.img, <uint16_t*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)
    elif w.f32:
        _run(<const float*>w.img, <float*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)
    else:
        _run(<const float*>w.img, <uint16_t*>w.dst, P, w.geo, from_rois, mode, crop, w.n, w.band, w.nthreads)


cdef _dispatch(image, out, Params* P, geo_arr, int from_rois, int mode, double crop, int num_threads):
    cdef Work w
    _plan(&w, P, image, out, geo_arr, num_threads)
    if w.n == 0:
        return
    with nogil:
        _execute(&w, P, from_rois, mode, crop)


cdef _setup(Params* P, image, out, Py_ssize_t n, layout, channel_map, mean, std, border, fill, antialias):
    P.nhwc = _choice("layout", layout, LAYOUTS)
    P.C = _check_image(image)
    P.cout, P.out_h, P.out_w = _check_out(out, n, P.nhwc)
    P.H, P.W = image.shape[0], image.shape[1]
    P.stride = image.strides[0]
    P.border = _choice("border", border, BORDER_MODES)
    if not isinstance(fill, (int, float, np.integer, np.floating)) or not isfinite(fill):
        raise ValueError(f"fill must be a finite number (source units), got {fill!r}")
    P.fill = fill
    P.antialias = bool(antialias)
    # N bands or float32 samples: the generic kernel; 1/3/4 uint8/uint16 channels: the SIMD one
    P.generic = P.C not in (1, 3, 4) or image.dtype == np.float32
    P.poly = NULL
    P.poly_off = NULL
    P.mirror = NULL
    _fill_channels(P, channel_map, mean, std)


cdef _polygon_edges(Params* P, polygons, arr, int mode, double crop):
    """Each ROI's polygon as edges in output pixel coordinates (_polygons.py)
    and the offsets of each ROI's edges; P points at them. None: no masks."""
    cdef Py_ssize_t n = arr.shape[0], k
    cdef double r[5]
    cdef double A[6]
    cdef int box[4]
    cdef int i
    if polygons is None:
        return None
    polygons = list(polygons)
    if len(polygons) != n:
        raise ValueError(f"polygons must have one entry (None or a polygon) per ROI ({n}), got {len(polygons)}")
    affines = np.zeros((n, 6), dtype=np.float64)
    for k in range(n):
        if polygons[k] is not None:
            for i in range(5):
                r[i] = arr[k, i]
            roi_to_affine(r, P.out_w, P.out_h, mode, crop, A, box)
            for i in range(6):
                affines[k, i] = A[i]
    # imported on first use: this module is imported by the package's __init__
    from roiclass.ext._polygons import edges as polygon_edges
    edges, offsets = polygon_edges(polygons, affines)
    P.poly = <const double*>cnp.PyArray_DATA(edges)
    P.poly_off = <const Py_ssize_t*>cnp.PyArray_DATA(offsets)
    return (edges, offsets)


def preprocess_rois(image, rois, out, *, layout="NCHW", channel_map=None, mean=None, std=None,
                    resize="stretch", crop_fraction=1.0, border="constant", fill=0.0,
                    antialias=True, int num_threads=1, polygons=None):
    """Cut N rotated ROIs out of `image`, resample each to out's size, map
    channels, normalize ((x - mean) / std, source units) and write out[n].
    `rois`: (N, 5) rows x, y, width, height, angle (degrees clockwise about
    the top-left corner (x, y)), or (N, 6) with column 5 the flags (0, or 1:
    the output flipped along its width axis, np.flip of the unmirrored one).
    `polygons`: None, or one entry per ROI: None or a polygon in image
    coordinates (an (M, 2) ring or a list of rings, even-odd); output samples
    whose source point lies outside it are `fill`.

    See ext/README.md for the geometry and every option. Raises TypeError or
    ValueError, naming the argument, before any work is done.
    """
    cdef Params P
    arr, flags = _roi_rows(rois)
    cdef int mode = _choice("resize", resize, RESIZE_MODES)
    _check_crop(crop_fraction)
    _setup(&P, image, out, arr.shape[0], layout, channel_map, mean, std, border, fill, antialias)
    if flags is not None:
        P.mirror = <const unsigned char*>cnp.PyArray_DATA(flags)
    masks = _polygon_edges(&P, polygons, arr, mode, crop_fraction)  # kept alive through the call
    _dispatch(image, out, &P, arr, 1, mode, crop_fraction, num_threads)


def preprocess_batch(items, *, layout="NCHW", resize="stretch", crop_fraction=1.0,
                     border="constant", antialias=True, int num_threads=1):
    """preprocess_rois for many images in one call and one release of the GIL
    (an inference batch gathers ROIs of many requests; each release costs a
    wait for the GIL on return when other threads are busy).

    `items`: a sequence of (image, rois, out, channel_map, mean, std, fill[,
    polygons]) tuples, preprocess_rois's arguments per item; the keyword options are
    shared. Returns a list with one entry per item: None once its ROIs are
    written, or the TypeError / ValueError its checks raised (that item's
    `out` is left untouched; the other items go on). Invalid shared options
    raise before any work.
    """
    cdef int mode = _choice("resize", resize, RESIZE_MODES)
    _check_crop(crop_fraction)
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
    _choice("layout", layout, LAYOUTS)
    _choice("border", border, BORDER_MODES)
    items = list(items)
    cdef Py_ssize_t k, n = len(items)
    cdef double crop = crop_fraction
    results = [None] * n
    if n == 0:
        return results
    cdef Params* P = <Params*>PyMem_Malloc(n * sizeof(Params))
    cdef Work* W = <Work*>PyMem_Malloc(n * sizeof(Work))
    held = []  # the arrays of every item, alive until the kernels are done
    try:
        if P == NULL or W == NULL:
            raise MemoryError()
        for k in range(n):
            W[k].n = 0
            try:
                item = tuple(items[k])
                if len(item) not in (7, 8):
                    raise ValueError(f"items[{k}] must be (image, rois, out, channel_map, mean, std, "
                                     f"fill[, polygons]), got {len(item)} values")
                image, rois, out, channel_map, mean, std, fill = item[:7]
                arr, flags = _roi_rows(rois)
                _setup(&P[k], image, out, arr.shape[0], layout, channel_map, mean, std, border, fill,
                       antialias)
                if flags is not None:
                    P[k].mirror = <const unsigned char*>cnp.PyArray_DATA(flags)
                masks = _polygon_edges(&P[k], item[7] if len(item) == 8 else None, arr, mode, crop)
                _plan(&W[k], &P[k], image, out, arr, num_threads)
            except (TypeError, ValueError) as exc:
                W[k].n = 0
                results[k] = exc
                continue
            held.append((image, arr, out, masks, flags))
        with nogil:
            for k in range(n):
                _execute(&W[k], &P[k], 1, mode, crop)
    finally:
        PyMem_Free(P)
        PyMem_Free(W)
    return results


def warp_affine(image, matrices, out, *, layout="NCHW", channel_map=None, mean=None, std=None,
                border="constant", fill=0.0, antialias=True, int num_threads=1):
    """Lower-level entry: out[n] samples the source at matrices[n] @ [u+0.5, v+0.5, 1]
    (continuous coordinates, matrices (N, 2, 3)). Same options as preprocess_rois."""
    cdef Params P
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise ValueError(f"matrices must have shape (N, 2, 3), got {m.shape}")
    arr = _check_rois(m.reshape(m.shape[0], 6), 6, "matrices")
    _setup(&P, image, out, arr.shape[0], layout, channel_map, mean, std, border, fill, antialias)
    _dispatch(image, out, &P, arr, 0, 0, 1.0, num_threads)


cdef int _roi_geometry(roi, int out_width, int out_height, resize, double crop_fraction,
                       double* A, int* box) except -1:
    """Checks the arguments, then fills A (output pixel centre -> source) and
    box (the output pixels that show the ROI)."""
    cdef double r[5]
    mode = _choice("resize", resize, RESIZE_MODES)
    arr = _check_rois(np.asarray(roi, dtype=np.float64).reshape(1, -1), 5, "roi")
    if out_width < 1 or out_height < 1:
        raise ValueError(f"out_width and out_height must be >= 1, got {out_width} x {out_height}")
    _check_crop(crop_fraction)
    for i in range(5):
        r[i] = arr[0, i]
    roi_to_affine(r, out_width, out_height, mode, crop_fraction, A, box)
    return 0


def roi_affine(roi, int out_width, int out_height, resize="stretch", double crop_fraction=1.0):
    """(2, 3) float64 A with [sx, sy] = A @ [u + 0.5, v + 0.5, 1]: output pixel
    centres to continuous source coordinates (pixel (i, j) covers [i, i+1))."""
    cdef double A[6]
    cdef int box[4]
    _roi_geometry(roi, out_width, out_height, resize, crop_fraction, A, box)
    return np.array([[A[0], A[1], A[2]], [A[3], A[4], A[5]]], dtype=np.float64)


def roi_content_box(roi, int out_width, int out_height, resize="stretch", double crop_fraction=1.0):
    """(x0, y0, x1, y1): the output pixels that show the ROI (letterbox leaves
    the rest as fill; the other modes return the whole output)."""
    cdef double A[6]
    cdef int box[4]
    _roi_geometry(roi, out_width, out_height, resize, crop_fraction, A, box)
    return (box[0], box[1], box[2], box[3])
