"""Reading and writing image files: every format, every bad input, atomic writes, output checks."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from nst_keras.imageio import (
    SUPPORTED_INPUT,
    SUPPORTED_OUTPUT,
    ImageError,
    LoadedImage,
    check_output_path,
    load_image,
    save_image,
)
from nst_keras.imageio import read as reading
from nst_keras.imageio import write as writing


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def as16(values: np.ndarray) -> np.ndarray:
    """Float 0..255 values read from a 16-bit file, back to their 16-bit integers."""
    return np.rint(np.asarray(values, dtype=np.float64) * 257.0).astype(np.int64)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


# --- A tiny independent PNG writer, to make files Pillow cannot write (16-bit RGB, LA, interlaced) --------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = b
        elif kind == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (x - pred) & 0xFF
    return bytes(out)


def _scanlines(samples: np.ndarray, bit_depth: int, first_filter: int) -> bytes:
    """Rows of (H, W, C) samples, each filtered with a different PNG filter type (cycling 0..4)."""
    dtype = ">u2" if bit_depth == 16 else "u1"
    height, width, channels = samples.shape
    bpp = channels * (bit_depth // 8)
    prev = bytes(width * bpp)
    out = bytearray()
    for y in range(height):
        row = samples[y].astype(dtype).tobytes()
        kind = (first_filter + y) % 5
        out += bytes([kind]) + _filter_row(kind, row, prev, bpp)
        prev = row
    return bytes(out)


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def write_png(path, samples: np.ndarray, *, bit_depth: int, colour_type: int, interlace=False, chunks=()):
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[..., None]
    height, width = samples.shape[:2]
    if interlace:
        data = b""
        for n, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                data += _scanlines(sub, bit_depth, n)
    else:
        data = _scanlines(samples, bit_depth, 0)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 1 if interlace else 0)
    body = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    for kind, payload in chunks:
        body += _chunk(kind, payload)
    body += _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")
    with open(path, "wb") as handle:
        handle.write(body)
    return path


# --- Formats ------------------------------------------------------------------------------------------------------


def test_rgb_png_exact(tmp_path, rng):
    pixels = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert isinstance(image, LoadedImage)
    assert image.rgb.dtype == np.float32 and image.rgb.shape == (17, 23, 3)
    assert np.array_equal(image.rgb, pixels.astype(np.float32))
    assert image.alpha is None and image.bit_depth == 8
    assert image.path == str(tmp_path / "a.png")
    assert image.rgba().shape == (17, 23, 3)
    assert (image.height, image.width) == (17, 23)


def test_rgba_png_keeps_alpha(tmp_path, rng):
    pixels = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.alpha is not None and image.alpha.dtype == np.float32
    assert np.array_equal(image.rgb, pixels[..., :3])
    assert np.array_equal(image.alpha, pixels[..., 3])
    assert np.array_equal(image.rgba(), pixels.astype(np.float32))


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_common_formats(tmp_path, rng, fmt, suffix):
    # A smooth gradient survives lossy formats closely.
    y, x = np.mgrid[0:32, 0:48]
    pixels = np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).clip(0, 255).astype(np.uint8)
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(pixels).save(tmp_path / f"a{suffix}", format=fmt, **extra)
    image = load_image(tmp_path / f"a{suffix}")
    assert image.rgb.shape == (32, 48, 3) and image.alpha is None and image.bit_depth == 8
    error = np.abs(image.rgb - pixels).mean()
    assert error < (4 if fmt in ("JPEG", "WEBP") else 1e-6)


def test_lossless_webp_with_alpha(tmp_path, rng):
    pixels = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    pixels[..., 3] = np.where(pixels[..., 3] > 128, 255, 30)
    Image.fromarray(pixels).save(tmp_path / "a.webp", lossless=True, exact=True)
    image = load_image(tmp_path / "a.webp")
    assert np.array_equal(image.alpha, pixels[..., 3])
    assert np.array_equal(image.rgb, pixels[..., :3])


def test_format_detected_by_content_not_extension(tmp_path, rng):
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "really-a-png.jpg", format="PNG")
    Image.fromarray(pixels).save(tmp_path / "no-extension", format="PNG")
    Image.fromarray(pixels).save(tmp_path / "a.gif", format="GIF")  # not in SUPPORTED_INPUT, but Pillow reads it
    assert np.array_equal(load_image(tmp_path / "really-a-png.jpg").rgb, pixels)
    assert np.array_equal(load_image(tmp_path / "no-extension").rgb, pixels)
    assert load_image(tmp_path / "a.gif").rgb.shape == (8, 8, 3)
    assert ".webp" in SUPPORTED_INPUT and ".bmp" in SUPPORTED_INPUT


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grey_becomes_rgb(tmp_path, rng, mode):
    grey = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    picture = Image.fromarray(grey).convert(mode)
    picture.save(tmp_path / "g.png")
    expected = np.asarray(picture.convert("L"), dtype=np.float32)
    image = load_image(tmp_path / "g.png")
    assert image.alpha is None and image.bit_depth == 8
    for c in range(3):
        assert np.array_equal(image.rgb[..., c], expected)


def test_grey_with_alpha(tmp_path, rng):
    la = rng.integers(0, 256, (7, 9, 2), dtype=np.uint8)
    Image.merge("LA", [Image.fromarray(la[..., 0]), Image.fromarray(la[..., 1])]).save(tmp_path / "la.png")
    image = load_image(tmp_path / "la.png")
    assert np.array_equal(image.rgb[..., 1], la[..., 0]) and np.array_equal(image.alpha, la[..., 1])


def test_grey_colour_key_transparency(tmp_path, rng):
    grey = rng.integers(1, 256, (6, 6), dtype=np.uint8)
    grey[2, 2] = 0
    write_png(tmp_path / "k.png", grey, bit_depth=8, colour_type=0, chunks=[(b"tRNS", struct.pack(">H", 0))])
    image = load_image(tmp_path / "k.png")
    assert image.alpha is not None
    assert image.alpha[2, 2] == 0 and (image.alpha == 0).sum() == 1 and image.alpha.max() == 255


def test_rgb_colour_key_transparency(tmp_path, rng):
    rgb = rng.integers(0, 200, (6, 6, 3), dtype=np.uint8)
    rgb[1, 4] = (255, 0, 255)
    write_png(tmp_path / "k.png", rgb, bit_depth=8, colour_type=2, chunks=[(b"tRNS", struct.pack(">HHH", 255, 0, 255))])
    image = load_image(tmp_path / "k.png")
    assert image.alpha[1, 4] == 0 and (image.alpha == 0).sum() == 1


def test_palette_without_transparency(tmp_path, rng):
    pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    palette_image = Image.fromarray(pixels).quantize(16)
    palette_image.save(tmp_path / "p.png")
    image = load_image(tmp_path / "p.png")
    assert image.alpha is None and image.bit_depth == 8
    assert np.array_equal(image.rgb, np.asarray(palette_image.convert("RGB")))


def test_palette_with_transparency(tmp_path):
    palette_image = Image.new("P", (8, 8), 1)
    palette_image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    palette_image.putpixel((3, 4), 2)
    palette_image.putpixel((0, 0), 0)
    palette_image.save(tmp_path / "p.png", transparency=0)
    image = load_image(tmp_path / "p.png")
    assert image.alpha is not None
    assert image.alpha[0, 0] == 0 and image.alpha[4, 3] == 255 and (image.alpha == 0).sum() == 1
    assert tuple(image.rgb[4, 3]) == (0, 255, 0) and tuple(image.rgb[1, 1]) == (255, 0, 0)


def test_gif_with_transparency(tmp_path):
    frame = Image.new("P", (8, 8), 1)
    frame.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    frame.putpixel((5, 5), 0)
    frame.save(tmp_path / "t.gif", transparency=0)
    image = load_image(tmp_path / "t.gif")
    assert image.alpha[5, 5] == 0 and image.alpha[0, 0] == 255
    assert tuple(image.rgb[0, 0]) == (200, 100, 50)


def test_cmyk_jpeg_converted(tmp_path):
    cmyk = np.zeros((16, 32, 4), dtype=np.uint8)
    cmyk[:, :16, 0] = 255  # cyan
    cmyk[:, 16:, 3] = 128  # half black
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=98)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    image = load_image(tmp_path / "c.jpg")
    assert image.rgb.shape == (16, 32, 3) and image.alpha is None
    cyan = image.rgb[4:12, 2:12].mean(axis=(0, 1))
    grey = image.rgb[4:12, 20:30].mean(axis=(0, 1))
    assert cyan[0] < 20 and cyan[1] > 235 and cyan[2] > 235
    assert np.all(np.abs(grey - 127) < 12)


def test_cmyk_tiff_exact_formula(tmp_path):
    cmyk = np.zeros((4, 4, 4), dtype=np.uint8)
    cmyk[0, 0] = (255, 0, 0, 0)
    cmyk[0, 1] = (0, 255, 0, 0)
    cmyk[0, 2] = (0, 0, 0, 255)
    cmyk[0, 3] = (0, 0, 255, 102)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    rgb = load_image(tmp_path / "c.tif").rgb
    assert tuple(rgb[0, 0]) == (0, 255, 255)
    assert tuple(rgb[0, 1]) == (255, 0, 255)
    assert tuple(rgb[0, 2]) == (0, 0, 0)
    assert tuple(rgb[1, 1]) == (255, 255, 255)
    assert np.allclose(rgb[0, 3], (153, 153, 0), atol=1)


# --- 16 bits --------------------------------------------------------------------------------------------------


def test_16bit_grey_png_exact(tmp_path, rng):
    grey = rng.integers(0, 65536, (13, 17), dtype=np.uint16)
    grey[0, 0], grey[0, 1] = 0, 65535
    Image.fromarray(grey).save(tmp_path / "g16.png")
    image = load_image(tmp_path / "g16.png")
    assert image.bit_depth == 16 and image.alpha is None
    assert np.array_equal(as16(image.rgb[..., 0]), grey) and np.array_equal(as16(image.rgb[..., 2]), grey)
    assert image.rgb[0, 1, 0] == 255.0
    # Fractional precision is kept: 16-bit values that share their high byte stay distinct.
    assert len(np.unique(image.rgb)) > 150


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("channels,colour_type", [(3, 2), (4, 6), (2, 4)])
def test_16bit_png_written_elsewhere_exact(tmp_path, rng, channels, colour_type, interlace):
    """16-bit RGB, RGBA and grey+alpha PNGs with every filter type, plain and interlaced, read exactly."""
    samples = rng.integers(0, 65536, (11, 13, channels), dtype=np.uint16)
    write_png(tmp_path / "s.png", samples, bit_depth=16, colour_type=colour_type, interlace=interlace)
    image = load_image(tmp_path / "s.png")
    assert image.bit_depth == 16
    if channels == 2:
        assert np.array_equal(as16(image.rgb[..., 0]), samples[..., 0])
        assert np.array_equal(as16(image.rgb[..., 1]), samples[..., 0])
        assert np.array_equal(as16(image.alpha), samples[..., 1])
    else:
        assert np.array_equal(as16(image.rgba()), samples)


def test_16bit_rgb_png_colour_key(tmp_path, rng):
    samples = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    samples[3, 2] = (1000, 2000, 3000)
    samples[1, 1] = (1000, 2000, 3001)  # same high bytes, not the key: stays opaque
    trns = (b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    write_png(tmp_path / "k.png", samples, bit_depth=16, colour_type=2, chunks=[trns])
    image = load_image(tmp_path / "k.png")
    assert image.alpha[3, 2] == 0 and image.alpha[1, 1] == 255 and (image.alpha == 0).sum() == 1


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_16bit_round_trip_exact(tmp_path, rng, channels, suffix):
    samples = rng.integers(0, 65536, (19, 21, channels), dtype=np.uint16)
    samples[0, 0] = 0
    samples[0, 1] = 65535
    path = tmp_path / f"out{suffix}"
    save_image(path, samples / 257.0, bit_depth=16)
    with Image.open(path) as written:
        assert written.format == ("PNG" if suffix == ".png" else "TIFF")
        assert written.size == (21, 19) and written.mode == ("RGB" if channels == 3 else "RGBA")
        # Pillow keeps the high bytes: a check that is independent of our reader.
        assert np.array_equal(np.asarray(written), (samples >> 8).astype(np.uint8))
    image = load_image(path)
    assert image.bit_depth == 16
    assert np.array_equal(as16(image.rgba()), samples)
    # Reading back the loaded floats and writing again gives the same values (no drift).
    save_image(tmp_path / f"again{suffix}", image.rgba(), bit_depth=16)
    assert np.array_equal(as16(load_image(tmp_path / f"again{suffix}").rgba()), samples)


def test_16bit_tiff_readable_by_tifffile(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile")
    samples = rng.integers(0, 65536, (9, 10, 4), dtype=np.uint16)
    save_image(tmp_path / "o.tif", samples / 257.0, bit_depth=16)
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), samples)
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.pages[0].extrasamples == (2,)  # unassociated alpha


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_png_readable_by_pypng_with_its_icc_profile(tmp_path, rng, channels):
    png = pytest.importorskip("png")
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    samples = rng.integers(0, 65536, (7, 9, channels), dtype=np.uint16)
    save_image(tmp_path / "o.png", samples / 257.0, bit_depth=16, icc_profile=profile)
    reader = png.Reader(filename=str(tmp_path / "o.png"))
    width, height, rows, info = reader.read()
    assert (width, height, info["bitdepth"], info["planes"]) == (9, 7, 16, channels)
    assert np.array_equal(np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(samples.shape), samples)
    kinds = [kind for kind, _ in png.Reader(filename=str(tmp_path / "o.png")).chunks()]
    assert kinds[:2] == [b"IHDR", b"iCCP"]  # the profile before the pixels, as the PNG spec asks


@pytest.mark.parametrize("depth", [8, 16])
def test_tiff_layout_as_before(tmp_path, rng, depth):
    """Deflate with the horizontal predictor, 72 dpi, the software tag, no tifffile JSON description."""
    tifffile = pytest.importorskip("tifffile")
    save_image(tmp_path / "o.tif", rng.uniform(0, 255, (6, 5, 3)), bit_depth=depth)
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages[0]
        assert tif.byteorder == "<" and page.bitspersample == depth and page.samplesperpixel == 3
        assert int(page.compression) == 8 and int(page.predictor) == 2  # Adobe deflate, horizontal differencing
        assert page.tags["Software"].value == "nst-keras" and page.tags["XResolution"].value == (72, 1)
        assert "ImageDescription" not in page.tags


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_16bit_tiff_written_elsewhere_exact(tmp_path, rng, compression, byteorder):
    tifffile = pytest.importorskip("tifffile")
    samples = rng.integers(0, 65536, (12, 7, 3), dtype=np.uint16)
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, samples, photometric="rgb", byteorder=byteorder, compression=compression)
    image = load_image(path)
    assert image.bit_depth == 16 and np.array_equal(as16(image.rgb), samples)


def test_unsupported_tiff_variant_one_line(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile")
    samples = rng.integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", samples, photometric="rgb", planarconfig="separate")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "planar.tif", what="style image")
    assert "looks like a TIFF file but cannot be read" in one_line(exc)


def test_32bit_int_and_float_grey_tiff(tmp_path):
    ints = np.array([[0, 257, 65535], [1000, 30000, 70000]], dtype=np.int32)
    ints = np.repeat(np.repeat(ints, 3, axis=0), 3, axis=1)
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    image = load_image(tmp_path / "i.tif")
    assert image.bit_depth == 16
    assert np.allclose(image.rgb[0, [0, 3, 6], 0], [0, 1, 255]) and image.rgb.max() == 255
    floats = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    Image.fromarray(floats).save(tmp_path / "f.tif")
    image = load_image(tmp_path / "f.tif")
    assert np.allclose(image.rgb[..., 1], floats * 255, atol=1e-3)


# --- EXIF orientation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, rng, orientation):
    pixels = rng.integers(0, 256, (5, 8, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    image = load_image(tmp_path / "o.png")
    assert image.rgb.shape == expected.shape
    assert np.array_equal(image.rgb, expected)


def test_exif_rotated_jpeg(tmp_path):
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :40] = (255, 0, 0)  # left half red, right half blue, as stored
    pixels[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif, quality=95)
    image = load_image(tmp_path / "r.jpg")
    assert image.rgb.shape == (80, 40, 3)
    top, bottom = image.rgb[5:30].mean(axis=(0, 1)), image.rgb[50:75].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 50  # stored left (red) is on top after rotating clockwise
    assert bottom[2] > 200 and bottom[0] < 50


def test_exif_orientation_with_alpha_and_16_bits(tmp_path, rng):
    samples = rng.integers(0, 65536, (4, 6, 4), dtype=np.uint16)
    save_image(tmp_path / "s.png", samples / 257.0, bit_depth=16)
    # Add an eXIf chunk after IHDR to the file we wrote.
    data = (tmp_path / "s.png").read_bytes()
    exif = Image.Exif()
    exif[0x0112] = 8
    data = data[:33] + _chunk(b"eXIf", exif.tobytes()) + data[33:]
    (tmp_path / "s.png").write_bytes(data)
    image = load_image(tmp_path / "s.png")
    assert np.array_equal(as16(image.rgba()), np.rot90(samples, 1))


# --- Size: max_size, min_side, pixel limit ----------------------------------------------------------------------


def test_max_size_downscales_with_lanczos(tmp_path, rng):
    y, x = np.mgrid[0:300, 0:400]
    pixels = np.stack([x * 255 / 399, y * 255 / 299, np.full_like(x, 80.0)], -1).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.png")
    image = load_image(tmp_path / "big.png", max_size=100)
    assert image.rgb.shape == (75, 100, 3)
    assert image.rgb.min() >= 0 and image.rgb.max() <= 255
    assert abs(image.rgb[..., 2].mean() - 80) < 0.5
    small = load_image(tmp_path / "big.png", max_size=1000)
    assert small.rgb.shape == (300, 400, 3)
    assert load_image(tmp_path / "big.png", max_size=0).rgb.shape == (300, 400, 3)


def test_max_size_keeps_alpha_aligned(tmp_path):
    pixels = np.zeros((64, 128, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:, 64:, 3] = 0
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png", max_size=32)
    assert image.alpha.shape == (16, 32)
    assert image.alpha[:, :14].min() > 250 and image.alpha[:, 18:].max() < 5


def test_one_pixel_image_refused(tmp_path):
    Image.new("RGB", (1, 1), (9, 9, 9)).save(tmp_path / "a.png")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "a.png", what="content image", min_side=32)
    message = one_line(exc)
    assert message.startswith(f"content image '{tmp_path / 'a.png'}' is 1x1 pixels")
    assert "each side must be at least 32 pixels" in message
    assert load_image(tmp_path / "a.png").rgb.shape == (1, 1, 3)  # min_side defaults to 1


def test_thin_strip_refused(tmp_path):
    Image.new("L", (20000, 20)).save(tmp_path / "strip.png")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "strip.png", what="style image 2", min_side=32, max_size=1024)
    message = one_line(exc)
    assert "style image 2" in message and "20000x20 pixels" in message and "at least 32" in message


def test_extreme_aspect_ratio_refused_after_max_size(tmp_path):
    Image.new("L", (20000, 100)).save(tmp_path / "strip.png")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "strip.png", what="content image", min_side=32, max_size=1024)
    message = one_line(exc)
    assert "aspect ratio 200:1" in message and "raise --max-size" in message
    assert "short side would be 5 pixels" in message


def _png_header_only(path, width, height, colour_type=2):
    """A PNG whose header declares a size, with (almost) no image data behind it: cheap to make."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.write_bytes(body + _chunk(b"IEND", b""))
    return path


def test_pixel_limit_refuses_huge_header(tmp_path):
    path = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    with pytest.raises(ImageError) as exc:
        load_image(path, what="content image")
    message = one_line(exc)
    assert "has 900,000,000 pixels, above the limit of 200,000,000 (--pixel-limit)" in message
    assert "30000x30000" in message


def test_pixel_limit_is_ours_not_pillows(tmp_path):
    """Pillow alone refuses above ~179 million pixels; with a higher limit the file gets decoded (and here
    found damaged, as it has no data), with no decompression-bomb error."""
    path = _png_header_only(tmp_path / "big.png", 14000, 14000, colour_type=0)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    with pytest.raises(ImageError) as exc:
        load_image(path, pixel_limit=300_000_000)
    message = one_line(exc)
    assert "damaged or truncated" in message
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own setting is restored


def test_pixel_limit_low_value(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"has 3,000 pixels, above the limit of 2,999"):
        load_image(tmp_path / "a.png", pixel_limit=2999)
    # PNG cannot be reduced while decoding: max_size does not help.
    with pytest.raises(ImageError, match="above the limit"):
        load_image(tmp_path / "a.png", pixel_limit=2999, max_size=20)
    assert load_image(tmp_path / "a.png", pixel_limit=3000).rgb.shape == (50, 60, 3)


def test_pixel_limit_jpeg_reduced_while_decoding(tmp_path):
    y, x = np.mgrid[0:600, 0:800]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.jpg", quality=90)
    with pytest.raises(ImageError, match="480,000 pixels, above the limit of 100,000"):
        load_image(tmp_path / "big.jpg", pixel_limit=100_000)
    image = load_image(tmp_path / "big.jpg", pixel_limit=100_000, max_size=200)
    assert image.rgb.shape == (150, 200, 3)
    # Still too big even at 1/8 scale (100x75 = 7,500 pixels).
    with pytest.raises(ImageError, match="even when decoded at reduced size 100x75"):
        load_image(tmp_path / "big.jpg", pixel_limit=5_000, max_size=50)


# --- Bad files ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "nope.png", what="style image")
    message = one_line(exc)
    assert "style image" in message and "nope.png" in message and "does not exist" in message
    assert isinstance(exc.value, ValueError)


def test_directory_given(tmp_path):
    with pytest.raises(ImageError, match="is a folder; expected an image file"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "empty.png", what="content image")
    assert "is empty (0 bytes)" in one_line(exc)


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("hello, these are my notes\nsecond line\n")
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "notes.png", what="content image")
    message = one_line(exc)
    assert "is not an image" in message and "received a text file" in message and "'hello, these" in message


def test_binary_garbage(tmp_path, rng):
    (tmp_path / "x.jpg").write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(ImageError, match="is not an image .*unknown format"):
        load_image(tmp_path / "x.jpg")


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path, rng, fmt, suffix):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    data = buffer.getvalue()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / f"cut{suffix}", what="content image")
    message = one_line(exc)
    assert "damaged" in message and "cut" in message


def test_corrupt_png_crc(tmp_path, rng):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "bad.png")
    assert "looks like a PNG file but cannot be read: it is damaged" in one_line(exc)


def test_permission_denied(tmp_path, monkeypatch, rng):
    path = tmp_path / "secret.png"
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(path)
    path.chmod(0)
    try:
        if not os.access(path, os.R_OK):  # root (CI) reads it anyway
            with pytest.raises(ImageError, match="cannot be read \\(permission denied\\)"):
                load_image(path)
    finally:
        path.chmod(0o644)

    # As root (CI) chmod does not stop reading: simulate the refusal the OS gives other users.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(reading, "open", refuse, raising=False)
    with pytest.raises(ImageError) as exc:
        load_image(path, what="init image")
    assert "init image" in one_line(exc) and "permission denied" in str(exc.value)


def test_not_a_path():
    with pytest.raises(ImageError, match="expected a file path"):
        load_image(42)
    with pytest.raises(ImageError, match="expected a file path"):
        load_image("")


def test_non_ascii_path(tmp_path, rng):
    folder = tmp_path / "Bilder"
    folder.mkdir()
    path = folder / "Ölgemälde ☕.png"
    pixels = rng.integers(0, 256, (6, 7, 4)).astype(np.float32)
    save_image(path, pixels)
    assert os.listdir(folder) == ["Ölgemälde ☕.png"]
    image = load_image(str(path))
    assert np.array_equal(image.rgba(), pixels)
    assert image.path == str(path)
    with pytest.raises(ImageError) as exc:
        load_image(folder / "Ölgemälde ☕ 2.png", what="style image")
    assert "Ölgemälde ☕ 2.png" in one_line(exc)


# --- Saving ---------------------------------------------------------------------------------------------------


def test_save_rounds_and_clips(tmp_path):
    image = np.array([[[-5.0, 0.4, 0.6], [254.6, 255.2, 300.0]]], dtype=np.float32)
    image = np.repeat(image, 2, axis=0)
    save_image(tmp_path / "c.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png"))[0], [[0, 0, 1], [255, 255, 255]])
    save_image(tmp_path / "c16.png", image, bit_depth=16)
    assert np.array_equal(as16(load_image(tmp_path / "c16.png").rgb[0]), [[0, 103, 154], [65432, 65535, 65535]])


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_save_8bit_rgba(tmp_path, rng, suffix):
    pixels = rng.integers(0, 256, (10, 14, 4)).astype(np.float32)
    save_image(tmp_path / f"o{suffix}", pixels)
    with Image.open(tmp_path / f"o{suffix}") as written:
        assert written.mode == "RGBA"
        assert np.array_equal(np.asarray(written), pixels.astype(np.uint8))
    image = load_image(tmp_path / f"o{suffix}")
    assert image.bit_depth == 8 and np.array_equal(image.rgba(), pixels)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_save_jpeg_drops_alpha(tmp_path, suffix):
    pixels = np.zeros((16, 16, 4), dtype=np.float32)
    pixels[..., 0] = 200
    pixels[..., 1] = 40
    pixels[..., 3] = 0  # fully transparent: must not turn white
    save_image(tmp_path / f"o{suffix}", pixels)
    with Image.open(tmp_path / f"o{suffix}") as written:
        assert written.format == "JPEG" and written.mode == "RGB"
        assert np.abs(np.asarray(written).astype(float) - [200, 40, 0]).max() < 4


def test_save_jpeg_16bit_refused(tmp_path):
    with pytest.raises(ImageError) as exc:
        save_image(tmp_path / "o.jpg", np.zeros((4, 4, 3)), bit_depth=16)
    message = one_line(exc)
    assert "JPEG holds only 8 bits" in message and "bit_depth=16" in message and ".png or .tif" in message
    assert not (tmp_path / "o.jpg").exists()


def test_save_bad_arguments(tmp_path):
    with pytest.raises(ImageError, match=r"unsupported file type \('.gif'\)"):
        save_image(tmp_path / "o.gif", np.zeros((4, 4, 3)))
    with pytest.raises(ImageError, match="bit depth must be 8 or 16"):
        save_image(tmp_path / "o.png", np.zeros((4, 4, 3)), bit_depth=12)
    with pytest.raises(ImageError, match=r"expected an image array"):
        save_image(tmp_path / "o.png", np.zeros((4, 4, 5)))
    assert os.listdir(tmp_path) == []


def test_save_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        save_image(tmp_path / "no" / "o.png", np.zeros((4, 4, 3)))


def test_save_keeps_file_mode(tmp_path):
    save_image(tmp_path / "o.png", np.zeros((4, 4, 3)))
    mode = os.stat(tmp_path / "o.png").st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_icc_profile_kept(tmp_path, rng):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pixels = rng.integers(0, 256, (5, 5, 3)).astype(np.float32)
    for name, depth in (("a.png", 8), ("b.png", 16), ("c.tif", 16), ("d.jpg", 8)):
        save_image(tmp_path / name, pixels, bit_depth=depth, icc_profile=profile)
        assert Image.open(tmp_path / name).info.get("icc_profile") == profile
        assert load_image(tmp_path / name).icc_profile == profile


@pytest.mark.parametrize("depth", [8, 16])
def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch, depth):
    out = tmp_path / "out.png"

    def broken_png16(handle, *args, **kwargs):
        handle.write(b"\x89PNG\r\n\x1a\n partial")
        raise OSError(28, "No space left on device")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writing, "write_png16", broken_png16)
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError) as exc:
        save_image(out, np.zeros((8, 8, 3)), bit_depth=depth)
    message = one_line(exc)
    assert "No space left on device" in message and "nothing was written" in message
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_keeps_existing_output(tmp_path, monkeypatch):
    out = tmp_path / "out.tif"
    save_image(out, np.full((8, 8, 3), 77.0))
    before = out.read_bytes()

    def broken_tiff(handle, *args, **kwargs):
        handle.write(b"II*\x00 partial")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(writing, "write_tiff", broken_tiff)
    with pytest.raises(ImageError, match="existing file was left unchanged"):
        save_image(out, np.zeros((8, 8, 3)))
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.tif"]


def test_atomic_write_interrupted(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(tmp_path / "o.png", np.zeros((4, 4, 3)))
    assert os.listdir(tmp_path) == []


# --- check_output_path ----------------------------------------------------------------------------------------


def test_check_output_path_ok(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for suffix in SUPPORTED_OUTPUT:
        assert check_output_path(f"result{suffix}") == str(tmp_path / f"result{suffix}")
    assert os.listdir(tmp_path) == []  # the write test left nothing behind


def test_check_output_path_extension(tmp_path):
    with pytest.raises(ImageError) as exc:
        check_output_path(tmp_path / "out.webp")
    message = one_line(exc)
    assert "'.webp'" in message and ".png, .jpg, .jpeg, .tif, .tiff" in message
    with pytest.raises(ImageError, match="no extension"):
        check_output_path(tmp_path / "out")


def test_check_output_path_folder(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        check_output_path(tmp_path / "x.png")
    with pytest.raises(ImageError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.png")


def test_check_output_path_under_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ImageError, match="is a file, not a folder"):
        check_output_path(tmp_path / "file.txt" / "x.png")
    with pytest.raises(ImageError, match="not a folder"):
        save_image(tmp_path / "file.txt" / "x.png", np.zeros((4, 4, 3)))


def test_check_output_path_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user (root) can write into a chmod 0o500 folder; simulated in the next test")
        with pytest.raises(ImageError, match="is not writable"):
            check_output_path(folder / "x.png")
        with pytest.raises(ImageError, match="is not writable"):
            save_image(folder / "x.png", np.zeros((4, 4, 3)))
    finally:
        folder.chmod(0o700)


def test_check_output_path_unwritable_simulated(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImageError) as exc:
        check_output_path(tmp_path / "x.png")
    assert "is not writable" in one_line(exc)
    with pytest.raises(ImageError, match="is not writable"):
        save_image(tmp_path / "x.png", np.zeros((4, 4, 3)))


def test_check_output_path_same_as_input(tmp_path, monkeypatch, rng):
    content = tmp_path / "cat.png"
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageError) as exc:
        check_output_path("cat.png", [("content image", str(content))])
    assert one_line(exc) == (
        "output 'cat.png' is the same file as the content image; choose another name so your original is not "
        "overwritten"
    )
    # A plain list of paths, a mapping, a LoadedImage, a symlink and a hard link are all caught.
    with pytest.raises(ImageError, match="same file as the input image"):
        check_output_path(content, [str(tmp_path / "other.png"), "./cat.png"])
    with pytest.raises(ImageError, match="same file as the style image 2"):
        check_output_path(content, {"content image": "x.png", "style image 2": content})
    with pytest.raises(ImageError, match="same file as the input image"):
        check_output_path(content, [load_image(content)])
    os.symlink(content, tmp_path / "link.png")
    with pytest.raises(ImageError, match="same file as the content image"):
        check_output_path(tmp_path / "link.png", [("content image", content)])
    os.link(content, tmp_path / "hard.png")
    with pytest.raises(ImageError, match="same file as the content image"):
        check_output_path(tmp_path / "hard.png", [("content image", content)])
    # A different file, or no inputs: fine.
    assert check_output_path(tmp_path / "result.png", [("content image", content), None]) == str(
        tmp_path / "result.png"
    )
    assert check_output_path(tmp_path / "result.png", str(content)) == str(tmp_path / "result.png")


def test_loaded_image_is_frozen(tmp_path):
    image = LoadedImage(rgb=np.zeros((2, 2, 3), np.float32), alpha=None, bit_depth=8, path="x.png")
    with pytest.raises(AttributeError):
        image.bit_depth = 16
