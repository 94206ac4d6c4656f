#!/usr/bin/env python3
"""AVIF output of imgest (Python package) side by side with sharp, on the thumb workload.

Decode, orient, fit in 800x800 (never enlarged), encode; per image: the median time of --runs runs
in one warm process each, the output's bytes, and its SSIM against the colour-managed Lanczos
reference of the shared harness (tools/quality.py), decoded with Pillow. sharp runs as
benches/peers/avif_sharp.mjs in the harness's Node folder. Prints Markdown tables.

    $BENCH_HOME/venv/bin/python benches/peers/avif.py --node-dir $BENCH_HOME/node \
        --images ../shared/bench-images --harness ../shared/bench/peers [--runs 3]

Needs the harness installed (`benches/peers/run.sh` does it) and imgest in its venv.
"""
import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image, ImageCms, ImageOps, features

import imgest

HERE = os.path.dirname(os.path.abspath(__file__))

SHARP = [
    {"name": "sharp avif q50 e4", "format": "avif", "options": {"quality": 50, "effort": 4}},
    {"name": "sharp webp q85", "format": "webp", "options": {"quality": 85}},
]


def imgest_configs(grid):
    out = [("imgest webp q85", {"format": "webp", "quality": 85})]
    for q, e in grid:
        out.append((f"imgest avif q{q} e{e}", {"format": "avif", "quality": q, "effort": e}))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grid", default="50:4,60:4,70:4,60:2,60:6",
                    help="imgest AVIF settings, quality:effort pairs")
    a = ap.parse_args()
    if not features.check("avif"):
        sys.exit("this Pillow cannot decode AVIF")
    sys.path.insert(0, os.path.join(a.harness, "tools"))
    sys.path.insert(0, os.path.join(a.harness, "runners"))
    from quality import flatten, ssim  # noqa: E402
    from bench_common import fit_inside  # noqa: E402

    images = sorted(f for f in os.listdir(a.images) if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    paths = [os.path.join(a.images, f) for f in images]
    refs = {}
    for f, p in zip(images, paths):
        im = Image.open(p)
        icc = im.info.get("icc_profile")
        im = ImageOps.exif_transpose(im)
        has_alpha = "A" in im.getbands() or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        if icc:
            im = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                           ImageCms.createProfile("sRGB"), outputMode=im.mode)
        size = fit_inside(im.width, im.height, 800)
        refs[f] = im.resize(size, Image.Resampling.LANCZOS) if size != im.size else im

    def score(f, data):
        o = Image.open(io.BytesIO(data))
        o.load()
        ref = refs[f]
        o = o.convert(ref.mode)
        if o.size != ref.size:
            o = o.resize(ref.size, Image.Resampling.LANCZOS)
        return ssim(flatten(ref), flatten(o))

    rows = {}  # config -> image -> (ms, bytes, ssim)
    with tempfile.TemporaryDirectory() as tmp:
        job = {"images": paths, "configs": SHARP, "runs": a.runs, "out": tmp}
        script = os.path.join(a.node_dir, "avif_sharp.mjs")
        with open(os.path.join(HERE, "avif_sharp.mjs")) as src, open(script, "w") as dst:
            dst.write(src.read())
        res = subprocess.run(["node", script], input=json.dumps(job), capture_output=True, text=True,
                             cwd=a.node_dir, check=True)
        for line in res.stdout.splitlines():
            r = json.loads(line)
            c = next(c for c in SHARP if c["name"] == r["config"])
            stem = os.path.splitext(r["image"])[0]
            data = open(os.path.join(tmp, c["name"], f"{stem}.{c['format']}"), "rb").read()
            rows.setdefault(c["name"], {})[r["image"]] = (r["ms"], r["bytes"], score(r["image"], data))

    grid = [tuple(int(x) for x in g.split(":")) for g in a.grid.split(",")]
    for name, v in imgest_configs(grid):
        pipe = imgest.Pipeline(variants=[{"name": "m", "max_width": 800, "max_height": 800, **v}],
                               dominant_color=False, placeholder=False)
        for f, p in zip(images, paths):
            data = open(p, "rb").read()
            out = pipe.process(data)  # warm-up, and the output kept
            times = []
            for _ in range(a.runs):
                t = time.perf_counter()
                out = pipe.process(data)
                times.append((time.perf_counter() - t) * 1000)
            b = out.variants["m"].data
            rows.setdefault(name, {})[f] = (statistics.median(times), len(b), score(f, b))

    base = rows["sharp avif q50 e4"]
    print("| config | ms vs sharp avif (geomean) | bytes vs sharp avif (sum) | mean SSIM800 | min SSIM800 |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        g = math.exp(statistics.mean(math.log(r[f][0] / base[f][0]) for f in images))
        b = sum(r[f][1] for f in images) / sum(base[f][1] for f in images)
        s = [r[f][2] for f in images]
        print(f"| {name} | {g:.2f} | {b:.2f} | {statistics.mean(s):.4f} | {min(s):.4f} |")
    print()
    print("| image | " + " | ".join(rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for f in images:
        cells = [f"{r[f][0]:.0f} ms, {r[f][1] / 1000:.1f} kB, {r[f][2]:.4f}" for r in rows.values()]
        print(f"| {f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
