"""imgest's Python package as a runner of the peer benchmark harness (see benches/peers/run.sh,
which installs the package into the harness's venv and points IMGEST_HARNESS at the harness).

ingest: 4 WebP q85 variants (thumbnail 150, medium 800, large 1600, original) + dominant colour;
thumb: one 800-px WebP q85. Variants of one image are encoded in parallel (rayon), as the
package does by default.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["IMGEST_HARNESS"], "runners"))

from bench_common import run_peer  # noqa: E402

import imgest  # noqa: E402

# As the Rust runner, the CLI and the service do in their main: buffers of 4 MiB or more get
# their own mappings, so freed images do not stay in the process's heaps.
imgest.map_large_buffers()

# The placeholder is not part of the harness's workload; the palette is the dominant colour's
# by-product (k-means), so one colour keeps the work the same.
INGEST = imgest.Pipeline(placeholder=False, palette_size=1)
THUMB = imgest.Pipeline(
    variants=[{"name": "medium", "max_width": 800, "max_height": 800}],
    dominant_color=False,
    placeholder=False,
)


def ingest(buf):
    r = INGEST.process(buf)
    return {
        "outputs": {name: v.data for name, v in r.variants.items()},
        "dominant": list(r.dominant_rgb) if r.dominant_rgb else None,
    }


def thumb(buf):
    return {"outputs": {"medium": THUMB.process(buf).variants["medium"].data}}


run_peer(
    "imgest-py",
    ingest,
    thumb,
    {"lib_version": f"imgest {imgest.__version__}", "threads": f"variants in parallel ({os.cpu_count()} cores)"},
    dominant_method="Oklab k-means over the visible pixels of the oriented sRGB image (grid-sampled to 4096)",
)
