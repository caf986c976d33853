# cython: language_level=3
"""ROI -> affine map (output pixel centre -> source point), shared by the
kernel and the Python helper roi_affine so that both use the same numbers.

Conventions: continuous coordinates, pixel (i, j) covers [i, i+1) x [j, j+1).
A ROI is (x, y, width, height, angle_deg) (roiclass.server.geometry.ROI_COLUMNS):
top-left corner (x, y), rotated clockwise on the image (y down) by angle_deg
about (x, y).
"""
from libc.math cimport cos, sin, fmod, floor, M_PI

# Resize modes (the order of RESIZE_NAMES in _preprocess.pyx).
cdef enum:
    RESIZE_STRETCH = 0
    RESIZE_LETTERBOX = 1
    RESIZE_CENTER_CROP = 2


cdef inline void exact_cos_sin(double angle_deg, double* c, double* s) noexcept nogil:
    # Multiples of 90 degrees get exact 0/+-1 so that rotated integer ROIs
    # sample pixel centres exactly (cos(pi/2) is 6e-17 otherwise).
    cdef double a = fmod(angle_deg, 360.0)
    if a < 0:
        a += 360.0
    if a == 0.0:
        c[0] = 1.0; s[0] = 0.0
    elif a == 90.0:
        c[0] = 0.0; s[0] = 1.0
    elif a == 180.0:
        c[0] = -1.0; s[0] = 0.0
    elif a == 270.0:
        c[0] = 0.0; s[0] = -1.0
    else:
        c[0] = cos(a * (M_PI / 180.0))
        s[0] = sin(a * (M_PI / 180.0))


cdef inline void roi_to_affine(const double* roi, int out_w, int out_h, int mode,
                               double crop_fraction, double* A, int* box) noexcept nogil:
    """A (2x3, row major): [sx, sy] = A @ [u + 0.5, v + 0.5, 1] in continuous
    coordinates. box = [x0, y0, x1, y1): output pixels that show the ROI
    (the letterbox content); the rest is fill."""
    cdef double x = roi[0], y = roi[1], w = roi[2], h = roi[3]
    cdef double c, s, p0 = 0.0, q0 = 0.0, kx, ky, scale, cw, ch
    cdef int icw, ich
    exact_cos_sin(roi[4], &c, &s)
    box[0] = 0; box[1] = 0; box[2] = out_w; box[3] = out_h
    if mode == RESIZE_LETTERBOX:
        scale = min(out_w / w, out_h / h)
        icw = <int>floor(w * scale + 0.5)
        ich = <int>floor(h * scale + 0.5)
        icw = max(1, min(out_w, icw))
        ich = max(1, min(out_h, ich))
        box[0] = (out_w - icw) // 2
        box[1] = (out_h - ich) // 2
        box[2] = box[0] + icw
        box[3] = box[1] + ich
        kx = w / icw
        ky = h / ich
        p0 = -box[0] * kx
        q0 = -box[1] * ky
    elif mode == RESIZE_CENTER_CROP:
        cw = w * crop_fraction
        ch = h * crop_fraction
        # keep the output aspect by cropping the longer side
        if cw * out_h > ch * out_w:
            cw = ch * out_w / out_h
        else:
            ch = cw * out_h / out_w
        p0 = (w - cw) * 0.5
        q0 = (h - ch) * 0.5
        kx = cw / out_w
        ky = ch / out_h
    else:
        kx = w / out_w
        ky = h / out_h
    # ROI-local (p, q) = (p0 + U kx, q0 + V ky) -> source (x + p c - q s, y + p s + q c)
    A[0] = kx * c
    A[1] = -ky * s
    A[2] = x + p0 * c - q0 * s
    A[3] = kx * s
    A[4] = ky * c
    A[5] = y + p0 * s + q0 * c
