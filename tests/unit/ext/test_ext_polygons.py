"""Polygon masks: a sample whose source point A @ (u + .5, v + .5, 1) lies
outside the ROI's polygon (even-odd) is the fill value; the others are the
unmasked output. Reference: rasterio.features.geometry_mask on the output
grid with A as its transform (GDAL's centre rule), cross-checked by shapely
away from ties; samples exactly on edges follow GDAL (test_ties_...)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import geometry_mask
from shapely.geometry import Polygon, mapping
from skimage.data import chelsea

from roiclass.ext import HAVE_OPENMP, preprocess_batch, preprocess_rois, roi_affine

IMG = chelsea()  # (300, 451, 3) uint8
FILL = -7.0  # in source units; std 1, mean 0: masked samples read -7


def star(cx, cy, r1, r2, n=7, phase=0.3):
    t = np.arange(2 * n) * np.pi / n + phase
    r = np.where(np.arange(2 * n) % 2 == 0, r1, r2)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def circle(cx, cy, r, n=40):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.1
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


POLYGONS = {
    "convex": [circle(160.3, 120.7, 55.1)],
    "triangle": [np.array([[101.3, 61.7], [251.9, 90.2], [140.4, 201.1]])],
    "concave": [star(170.2, 130.9, 80.3, 30.7)],
    "holes": [circle(170.2, 130.9, 90.3), circle(140.6, 120.2, 25.4)[::-1], star(205.1, 150.3, 30.2, 12.9)],
    "outside": [np.array([[-60.2, -40.7], [230.3, 20.1], [190.6, 160.9], [-30.1, 350.4]])],
}
ROIS = np.array([[90.5, 50.25, 160.0, 140.0, 0.0], [120.0, 30.0, 150.0, 120.0, 27.0],
                 [-20.0, -10.0, 200.0, 190.0, 0.0], [250.0, 60.0, 120.0, 110.0, 111.0]])


def inside_reference(rings, roi, w, h, resize="stretch"):
    """(h, w) bool: the sample's source point inside the polygon (geometry_mask), and
    the same by shapely's contains_xy."""
    a = roi_affine(roi, w, h, resize)
    poly = Polygon(rings[0], rings[1:])
    inside = geometry_mask([mapping(poly)], (h, w), Affine(*a.ravel()), invert=True)
    v, u = np.mgrid[0:h, 0:w] + 0.5
    sx, sy = a[0, 0] * u + a[0, 1] * v + a[0, 2], a[1, 0] * u + a[1, 1] * v + a[1, 2]
    even_odd = np.zeros((h, w), bool)  # shapely on each ring: the even-odd rule
    for ring in rings:
        even_odd ^= shapely.contains_xy(Polygon(ring), sx, sy)
    assert np.array_equal(inside, even_odd)
    return inside


def run(rois, polygons, w=48, h=40, **kw):
    out = np.empty((len(rois), 3, h, w), np.float32)
    preprocess_rois(IMG, rois, out, polygons=polygons, fill=FILL, **kw)
    return out


@pytest.mark.parametrize("name", list(POLYGONS))
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_mask_matches_geometry_mask_on_the_output_grid(name, resize):
    rings = POLYGONS[name]
    plain = run(ROIS, None, resize=resize)
    masked = run(ROIS, [rings] * len(ROIS), resize=resize)
    for k, roi in enumerate(ROIS):
        inside = inside_reference(rings, roi, 48, 40, resize)
        assert inside.any() and not inside.all(), "a case must test both sides"
        assert np.array_equal(masked[k][:, inside], plain[k][:, inside])
        assert (masked[k][:, ~inside] == FILL).all()


def test_mask_is_per_roi_and_none_leaves_an_roi_alone():
    polys = [POLYGONS["concave"], None, POLYGONS["holes"], None]
    plain = run(ROIS, None)
    masked = run(ROIS, polys)
    assert np.array_equal(masked[1], plain[1]) and np.array_equal(masked[3], plain[3])
    assert (masked[0] == FILL).any() and (masked[2] == FILL).any()


def test_mask_in_nhwc_float16_and_a_one_ring_array():
    ring = POLYGONS["triangle"][0]
    out = np.empty((1, 40, 48, 3), np.float16)
    preprocess_rois(IMG, ROIS[1:2], out, layout="NHWC", polygons=[ring], fill=FILL)
    inside = inside_reference([ring], ROIS[1], 48, 40)
    assert (out[0][~inside] == FILL).all()
    assert np.array_equal(out[0][inside], run(ROIS[1:2], None)[0].transpose(1, 2, 0)[inside].astype(np.float16))


def test_wide_outputs_cross_tiles():
    """Outputs wider than the kernel's toggle tile (2048 samples)."""
    roi = [10.0, 40.0, 430.0, 200.0, 3.0]
    rings = POLYGONS["holes"]
    out = run([roi], [rings], w=5000, h=3)
    inside = inside_reference(rings, roi, 5000, 3)
    assert (out[0][:, ~inside] == FILL).all() and (out[0][:, inside] != FILL).all()


def test_mask_from_many_threads_and_openmp_threads():
    rng = np.random.default_rng(5)
    jobs = []
    for i in range(16):
        rings = [star(*rng.uniform(120, 220, 2), rng.uniform(40, 90), rng.uniform(10, 35), n=5 + i % 4)]
        jobs.append(([ROIS[i % 4]], [rings]))
    expected = [run(r, p) for r, p in jobs]
    results = [None] * len(jobs)

    def work(i):
        for _ in range(5):
            results[i] = run(*jobs[i], num_threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert np.array_equal(got, want)
    if HAVE_OPENMP:  # one ROI split into row bands over threads
        big = run(ROIS[:1], [POLYGONS["concave"]], w=256, h=256, num_threads=4)
        assert np.array_equal(big, run(ROIS[:1], [POLYGONS["concave"]], w=256, h=256))


def test_preprocess_batch_takes_polygons_as_an_eighth_item():
    a = np.empty((4, 3, 40, 48), np.float32)
    b = np.empty((4, 3, 40, 48), np.float32)
    polys = [POLYGONS["concave"]] * 4
    res = preprocess_batch([(IMG, ROIS, a, None, 0.0, 1.0, FILL, polys), (IMG, ROIS, b, None, 0.0, 1.0, FILL)])
    assert res == [None, None]
    assert np.array_equal(a, run(ROIS, polys)) and np.array_equal(b, run(ROIS, None))
    bad = preprocess_batch([(IMG, ROIS, a, None, 0.0, 1.0, FILL, polys[:2])])
    assert isinstance(bad[0], ValueError) and "per ROI" in str(bad[0])


TIES = {  # vertices on the sample lattice: samples exactly on edges and vertices
    "triangle": [np.array([[100.0, 40.0], [116.0, 40.0], [100.0, 56.0]])],
    "centres cw": [np.array([[102.5, 41.5], [110.5, 41.5], [110.5, 50.5], [102.5, 50.5]])],
    "centres ccw": [np.array([[102.5, 41.5], [102.5, 50.5], [110.5, 50.5], [110.5, 41.5]])],
    "diamond": [np.array([[108.0, 40.5], [115.5, 48.0], [108.0, 55.5], [100.5, 48.0]])],
    "hole on centres": [np.array([[99.0, 39.0], [117.0, 39.0], [117.0, 57.0], [99.0, 57.0]]),
                        np.array([[104.5, 44.5], [104.5, 52.5], [112.5, 52.5], [112.5, 44.5]])],
}


@pytest.mark.parametrize("name", list(TIES))
@pytest.mark.parametrize("roi", [(100.0, 40.0, 16.0, 16.0, 0.0), (98.0, 38.0, 40.0, 40.0, 0.0)],
                         ids=["identity", "scaled"])
def test_ties_on_edges_and_vertices_follow_gdal(name, roi):
    """Samples exactly on an edge: GDAL's rule (geometry_mask), orientation quirk included."""
    rings = TIES[name]
    w = h = 16 if roi[2] == 16.0 else 20
    a = roi_affine(roi, w, h)
    poly = Polygon(rings[0], rings[1:])
    inside = geometry_mask([mapping(poly)], (h, w), Affine(*a.ravel()), invert=True)
    out = run(np.array([roi]), [rings], w=w, h=h)
    assert inside.any() and not inside.all()
    assert np.array_equal(out[0, 0] != FILL, inside)


def test_random_lattice_polygons_follow_gdal_exactly():
    """Vertices on the half-pixel lattice (edges through sample centres, horizontal
    edges on sample rows, vertices on samples), both orientations, with holes."""
    rng = np.random.default_rng(11)
    rois = [(100.0, 40.0, 16.0, 16.0, 0.0), (96.0, 36.0, 48.0, 48.0, 0.0), (116.0, 40.0, 16.0, 16.0, 90.0),
            (104.0, 60.0, 24.0, 32.0, 270.0)]
    for case in range(80):
        roi = rois[case % 4]
        n = int(rng.integers(3, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(3, 9, n)
        outer = np.round(np.stack([108 + r * np.cos(t), 48 + r * np.sin(t)], 1) * 2) / 2
        rings = [outer if case % 3 else outer[::-1]]
        if case % 5 == 0:
            rings.append(np.array([[106.5, 46.5], [109.0, 46.5], [109.0, 49.5]])[:: 1 if case % 10 else -1])
        poly = Polygon(rings[0], rings[1:])
        a = roi_affine(roi, 16, 16)
        inside = geometry_mask([mapping(poly)], (16, 16), Affine(*a.ravel()), invert=True)
        out = run(np.array([roi]), [rings], w=16, h=16)
        assert np.array_equal(out[0, 0] != FILL, inside), (case, rings)


def test_rows_with_many_crossings_and_wide_outputs():
    """A comb of 150 teeth: 300 crossings per row (beyond the sorted list kept
    on the stack: the general pass), on an output wider than its tile."""
    teeth = 150
    xs = np.linspace(20.3, 430.7, 2 * teeth + 1)
    top = [(x, 30.2 if i % 2 == 0 else 260.7) for i, x in enumerate(xs)]
    ring = np.array(top + [(430.7, 280.4), (20.3, 280.4)])
    roi = (10.0, 20.0, 430.0, 270.0, 0.0)
    for w, h in ((5000, 3), (600, 40)):
        out = run([roi], [[ring]], w=w, h=h)
        a = roi_affine(roi, w, h)
        inside = geometry_mask([mapping(Polygon(ring))], (h, w), Affine(*a.ravel()), invert=True)
        assert np.array_equal(out[0, 0] != FILL, inside)
