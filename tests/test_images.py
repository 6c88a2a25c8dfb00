"""Images as hospitals have them: PNG/JPEG 8- and 16-bit, DICOM with LUTs and both polarities."""

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from report2label.core.data.images import ImageError, read_image
from report2label.core.data.preprocess import preprocess
from report2label.core.image_model import Preprocessing

RAMP = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (20, 1))  # dark left, bright right


def write_dicom(path, pixels, photometric="MONOCHROME2", slope=1.0, intercept=0.0, window=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", "SYNTHETIC"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_monochrome2_keeps_polarity(tmp_path):
    pixels = read_image(write_dicom(tmp_path / "a.dcm", RAMP))
    assert pixels[0, -1] > pixels[0, 0]


def test_dicom_monochrome1_is_inverted(tmp_path):
    pixels = read_image(write_dicom(tmp_path / "a.dcm", RAMP, photometric="MONOCHROME1"))
    assert pixels[0, 0] > pixels[0, -1], "MONOCHROME1: low stored values are bright"


def test_dicom_rescale_and_window(tmp_path):
    scaled = read_image(write_dicom(tmp_path / "a.dcm", RAMP, slope=2.0, intercept=-100.0))
    assert scaled[0, 0] == -100.0 and scaled[0, -1] == 2 * 990 - 100
    windowed = read_image(write_dicom(tmp_path / "b.dcm", RAMP, window=(500, 200)))
    assert windowed[0, 0] == windowed[0, 10], "below the window: clipped to its floor"
    assert windowed[0, -1] == windowed[0, -10], "above the window: clipped to its ceiling"
    assert windowed[0, 40] < windowed[0, 60]


def test_dicom_without_suffix_is_recognised(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", RAMP)
    plain = tmp_path / "IMG0001"
    plain.write_bytes(path.read_bytes())
    assert read_image(plain).shape == (20, 100)


@pytest.mark.parametrize(
    "mode, dtype, suffix", [("L", np.uint8, ".png"), ("I;16", np.uint16, ".png"), ("L", np.uint8, ".jpg")]
)
def test_png_and_jpeg(tmp_path, mode, dtype, suffix):
    data = (RAMP / RAMP.max() * np.iinfo(dtype).max).astype(dtype)
    path = tmp_path / f"a{suffix}"
    Image.fromarray(data).save(path)
    pixels = read_image(path)
    assert pixels.shape == (20, 100) and pixels[0, -1] > pixels[0, 0]
    if dtype == np.uint16:
        assert pixels.max() > 255, "16-bit depth is kept"


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_corrupt_files_raise_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="broken.png: unreadable image"):
        read_image(path)


def test_preprocess_scales_crops_and_resizes():
    pixels = np.zeros((200, 300), dtype=np.float32)
    pixels[50:150, 100:250] = 0.5  # the foreground (0.3-0.7 after scaling)
    pixels[0, 0] = 1.0
    out = preprocess(pixels, Preprocessing(), 32)
    assert out.shape == (32, 32) and out.dtype == np.uint8
    assert abs(int(out.mean()) - 128) <= 2, "cropped to the foreground box"
    rotated = preprocess(pixels, Preprocessing(foreground_range=None, rotate_degrees=90), 32)
    assert rotated.shape == (32, 32)
