"""numpy / bytes / path / PIL -> roiclass.v1.Image."""
import numpy as np
import pytest
from PIL import Image

from roiclass.client import InvalidInputError, classifier_pb2 as pb, to_image_proto
from roiclass.client.types import raw_to_array


@pytest.fixture
def rgb():
    return np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def test_contiguous_rgb_is_packed(rgb):
    raw = to_image_proto(rgb).raw
    assert (raw.width, raw.height, raw.pixel_format, raw.row_stride) == (40, 30, pb.RGB8, 0)
    assert raw.pixels == rgb.tobytes()


def test_crop_of_larger_array_uses_row_stride(rgb):
    crop = rgb[5:20, 10:30]
    raw = to_image_proto(crop, "BGR").raw
    assert raw.pixel_format == pb.BGR8
    assert raw.row_stride == 40 * 3
    assert len(raw.pixels) == 14 * 40 * 3 + 20 * 3
    np.testing.assert_array_equal(raw_to_array(raw), crop)


def test_tiny_crop_of_wide_array_is_packed_instead():
    wide = np.zeros((10, 1000, 3), np.uint8)
    wide[2:4, 5:7] = 7
    raw = to_image_proto(wide[2:4, 5:7]).raw
    assert raw.row_stride == 0 and len(raw.pixels) == 2 * 2 * 3
    assert set(raw.pixels) == {7}


def test_strided_columns_are_packed(rgb):
    view = rgb[:, ::2]
    raw = to_image_proto(view).raw
    assert raw.row_stride == 0 and raw.width == 20
    np.testing.assert_array_equal(raw_to_array(raw), view)


def test_flipped_rows_are_packed(rgb):
    raw = to_image_proto(rgb[::-1]).raw
    np.testing.assert_array_equal(raw_to_array(raw), rgb[::-1])


@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 1)])
def test_single_channel_uint8_is_gray8(shape):
    gray = np.arange(42, dtype=np.uint8).reshape(shape)
    raw = to_image_proto(gray).raw
    assert raw.pixel_format == pb.GRAY8 and raw.pixels == gray.tobytes()


def test_rgba_default_and_bgra():
    rgba = np.zeros((2, 3, 4), np.uint8)
    assert to_image_proto(rgba).raw.pixel_format == pb.RGBA8
    assert to_image_proto(rgba, "BGRA").raw.pixel_format == pb.BGRA8


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_uint16_is_little_endian_gray16(dtype):
    values = np.array([[1, 256], [513, 65535]], dtype=dtype)
    raw = to_image_proto(values).raw
    assert raw.pixel_format == pb.GRAY16
    assert raw.pixels == bytes([1, 0, 0, 1, 1, 2, 255, 255])
    np.testing.assert_array_equal(raw_to_array(raw), values.astype(np.uint16))


def test_uint16_crop_with_row_stride():
    values = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)
    raw = to_image_proto(values[2:9, 1:8]).raw
    assert raw.row_stride == 20
    np.testing.assert_array_equal(raw_to_array(raw), values[2:9, 1:8])


def test_bad_dtype_names_the_field():
    with pytest.raises(InvalidInputError, match=r"image: array dtype must be uint8, uint16 or float32 .*float64") as info:
        to_image_proto(np.zeros((4, 4, 3), np.float64))
    assert info.value.details[0].field == "image"
    assert isinstance(info.value, ValueError)


def test_channel_order_must_fit_channels():
    with pytest.raises(InvalidInputError, match="channel_order: 'BGR' does not fit a 4-channel array; allowed: RGBA, BGRA"):
        to_image_proto(np.zeros((4, 4, 4), np.uint8), "BGR")
    with pytest.raises(InvalidInputError, match="must be one of RGB, BGR, RGBA, BGRA, GRAY"):
        to_image_proto(np.zeros((4, 4, 3), np.uint8), "rgb")
    with pytest.raises(InvalidInputError, match="2-channel"):
        to_image_proto(np.zeros((4, 4, 2), np.uint8), "RGB")
    with pytest.raises(InvalidInputError, match="GENERIC takes 1..16 bands"):
        to_image_proto(np.zeros((4, 4, 17), np.uint16))


@pytest.mark.parametrize("dtype, sample", [(np.uint8, pb.SAMPLE_UINT8), (np.uint16, pb.SAMPLE_UINT16),
                                           (">u2", pb.SAMPLE_UINT16), (np.float32, pb.SAMPLE_FLOAT32)])
@pytest.mark.parametrize("bands", [2, 5, 16])
def test_n_band_arrays_go_as_generic(dtype, sample, bands):
    values = (np.arange(3 * 5 * bands) % 250).reshape(3, 5, bands).astype(dtype)
    raw = to_image_proto(values).raw
    assert (raw.pixel_format, raw.bands, raw.sample_type, raw.width, raw.height) == (pb.GENERIC, bands, sample, 5, 3)
    wire = np.dtype(dtype).newbyteorder("<")
    np.testing.assert_array_equal(np.frombuffer(raw.pixels, wire).reshape(3, 5, bands), values)


def test_channel_order_bands_sends_any_array_as_generic():
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert to_image_proto(rgb).raw.pixel_format == pb.RGB8
    raw = to_image_proto(rgb, "BANDS").raw
    assert (raw.pixel_format, raw.bands, raw.sample_type) == (pb.GENERIC, 3, pb.SAMPLE_UINT8)
    crop = np.zeros((10, 12, 4), np.uint16)[2:8, 1:9]  # rows strided: sent with row_stride
    raw = to_image_proto(crop).raw
    assert raw.row_stride == 12 * 4 * 2 and raw.bands == 4 and len(raw.pixels) == 5 * 96 + 8 * 8


def test_empty_and_wrong_rank_arrays_are_rejected():
    with pytest.raises(InvalidInputError, match="empty"):
        to_image_proto(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="H×W or H×W×C"):
        to_image_proto(np.zeros((2, 2, 2, 3), np.uint8))


def test_bytes_and_paths_are_sent_encoded(tmp_path):
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(png)
    data = png.read_bytes()
    assert to_image_proto(data).encoded == data
    assert to_image_proto(bytearray(data)).encoded == data
    assert to_image_proto(png).encoded == data
    assert to_image_proto(str(png)).encoded == data


def test_missing_file_and_empty_bytes(tmp_path):
    with pytest.raises(InvalidInputError, match="file not found"):
        to_image_proto(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match="empty"):
        to_image_proto(b"")
    with pytest.raises(InvalidInputError, match="must be a numpy array, PIL image, encoded bytes or a file path, got int"):
        to_image_proto(3)


def test_pil_images(rgb):
    raw = to_image_proto(Image.fromarray(rgb)).raw
    assert raw.pixel_format == pb.RGB8 and raw.pixels == rgb.tobytes()
    gray = to_image_proto(Image.fromarray(rgb[:, :, 0])).raw
    assert gray.pixel_format == pb.GRAY8


def test_protos_pass_through():
    raw = pb.RawImage(width=1, height=1, pixel_format=pb.GRAY8, pixels=b"\x05")
    assert to_image_proto(raw).raw == raw
    image = pb.Image(encoded=b"abc")
    assert to_image_proto(image) is image


def test_yuv_frames_go_as_they_are():
    import cv2

    from roiclass.client.images import to_image_proto, yuv_image

    rgb = np.random.default_rng(2).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    raw = to_image_proto(i420, "I420").raw
    assert (raw.width, raw.height, raw.pixel_format, raw.pixels) == (10, 6, pb.I420, i420.tobytes())
    assert yuv_image(i420.tobytes(), 10, 6, "NV12").raw.pixel_format == pb.NV12
    for call, words in ((lambda: to_image_proto(i420[:, :9], "I420"), "(height * 3 / 2, width)"),
                        (lambda: yuv_image(b"", 9, 6), "even width and height, got 9x6"),
                        (lambda: yuv_image(b"", 10, 6, "RGB8"), "must be one of I420, NV12")):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert words in str(info.value)
