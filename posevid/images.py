"""Still images in and out: read upright (EXIF orientation applied), write atomically in the same format."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from posevid.errors import PosevidError
from posevid.outputs import partial_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

# EXIF orientation tag → degrees the stored image is turned clockwise for display (mirrored ones as 0)
_EXIF_ROTATION = {3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """An image file → ((H, W, 3) uint8 BGR in display orientation, EXIF rotation in degrees clockwise).

    Raises:
        PosevidError: one line naming the file, for a missing, empty, truncated or non-image file.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise PosevidError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise PosevidError(f"{path}: empty file (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()  # decodes the whole file: a truncated one raises here
                rotation = _EXIF_ROTATION.get(im.getexif().get(0x0112, 1), 0)
                upright = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        reason = "not an image" if isinstance(e, Image.UnidentifiedImageError) else str(e).split("\n")[0]
        raise PosevidError(f"{path}: cannot read the image ({reason})") from None
    rgb = np.asarray(upright, dtype=np.uint8)  # (H, W, 3)
    return np.ascontiguousarray(rgb[..., ::-1]), rotation


def annotated_path(source: Path, out_dir: Path) -> Path:
    """Where the annotated copy of an image goes: photo.JPG → OUT/photo.pose.JPG (the same format)."""
    return out_dir / f"{source.stem}.pose{source.suffix}"


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Writes (H, W, 3) uint8 BGR in the format of `path`'s suffix, via `<path>.partial` then a rename."""
    path = Path(path)
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if suffix in (".jpg", ".jpeg") else []  # others warn on it
    ok, data = cv2.imencode(suffix, image, params)
    if not ok:
        raise PosevidError(f"{path}: cannot encode an image in this format")
    partial = partial_path(path)
    try:
        partial.write_bytes(data.tobytes())
        os.replace(partial, path)
    except OSError as e:
        raise PosevidError(f"cannot write {path}: {e.strerror or e}") from None
    finally:  # also on Ctrl-C: no half-written file stays behind (after the rename there is none)
        partial.unlink(missing_ok=True)
    return path
