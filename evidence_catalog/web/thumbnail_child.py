"""The child side of the viewer's thumbnails: run as a script in its own interpreter
(``python -I thumbnail_child.py FILE MAX_SIDE MAX_PIXELS MEMORY_BYTES SECONDS``), it lowers its
own limits, decodes the image *FILE* with Pillow (EXIF orientation applied), shrinks it to fit
*MAX_SIDE* pixels and writes it to standard output as a JPEG; on any failure it writes nothing
and exits non-zero.

It imports only the standard library and Pillow (never :mod:`evidence_catalog`): whatever a
decoder does with a hostile file ends this process, not the viewer.
"""

from __future__ import annotations

import io
import resource
import signal
import sys
import warnings

#: The most a thumbnail written here may be (bytes).
_MAX_WRITTEN = 16 * 1024 * 1024


def main(argv: list[str]) -> int:
    path, max_side, max_pixels, memory, seconds = argv[0], *map(int, argv[1:5])
    signal.alarm(seconds + 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_MAX_WRITTEN, _MAX_WRITTEN))  # standard output may be a file
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    Image.init()
    formats = [name for name in Image.OPEN if name != "EPS"]  # EPS runs Ghostscript on the file
    try:
        with Image.open(path, formats=formats) as image:
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                return 3
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at a fraction of the size
            turned = ImageOps.exif_transpose(image)
            turned.thumbnail((max_side, max_side))
            picture = turned.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return 2
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=80)
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
