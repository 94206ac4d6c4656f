"""The Python package against the shared corpus (the checks of the core's and the npm package's
corpus tests) and, when IMGEST_NATIVE_REPORTS is set, byte parity with the native CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import imgest

CODE = {
    "truncated": "corrupt_input",
    "corrupt": "corrupt_input",
    "bomb": "limit_exceeded",
    "unsupported": "unsupported_format",
    "not-an-image": "not_an_image",
}
NAMES = {"150": "thumbnail", "800": "medium", "1600": "large"}


def run(data: bytes):
    try:
        return imgest.process(data), None
    except imgest.ImgestError as e:
        return None, e


def check_accept(entry, result, err, problems):
    if err is not None:
        problems.append(f"rejected: [{err.code}] {err}")
        return
    decoded = entry.get("decoded") or {}
    s = result.source
    if decoded.get("width") is not None and (s["width"], s["height"]) != (decoded["width"], decoded["height"]):
        problems.append(f"size {s['width']}x{s['height']}, expected {decoded['width']}x{decoded['height']}")
    for edge, want in (entry.get("variants_long_edge") or {}).items():
        v = result.variants[NAMES[edge]]
        if abs(v.width - want[0]) > 1 or abs(v.height - want[1]) > 1:
            problems.append(f"{v.name} {v.width}x{v.height}, expected {want}")
    for v in result.variants.values():
        if v.data[:4] != b"RIFF" or v.data[8:12] != b"WEBP":
            problems.append(f"{v.name} is not a WebP")
        for bad in (b"EXIF", b"XMP ", b"ICCP"):
            if bad in v.data:
                problems.append(f"{v.name} contains a {bad.decode()} chunk")


def test_corpus(corpus: Path):
    expected = json.loads((corpus / "EXPECTED.json").read_text())
    failed = []
    for entry in expected["files"]:
        result, err = run((corpus / entry["path"]).read_bytes())
        code = err.code if err else None
        problems: list = []
        outcome = entry["outcome"]
        if outcome == "reject":
            if code != CODE[entry["reason"]]:
                problems.append(f"expected {CODE[entry['reason']]}, got {code or 'ok'}")
            elif not isinstance(err, imgest.error_class(code)):
                problems.append(f"{type(err).__name__} is not the class of {code}")
        elif outcome == "accept-or-unsupported" and entry.get("magic_format") == "avif":
            # AVIF is accepted (the package is built with the core's default features).
            check_accept(entry, result, err, problems)
        elif outcome == "accept-or-unsupported":
            if code != "unsupported_format":
                check_accept(entry, result, err, problems)
        elif outcome == "reject-or-accept-without-inflating":
            if code != "limit_exceeded":
                check_accept(entry, result, err, problems)
        else:
            check_accept(entry, result, err, problems)
        if problems:
            failed.append(f"{entry['path']}: {'; '.join(problems)}")
    print(f"python corpus: {len(expected['files']) - len(failed)} passed, {len(failed)} failed")
    assert failed == []


NATIVE = os.environ.get("IMGEST_NATIVE_REPORTS")


@pytest.mark.skipif(not NATIVE, reason="IMGEST_NATIVE_REPORTS is not set")
def test_parity_with_the_native_cli():
    # IMGEST_NATIVE_REPORTS holds the native CLI's output for the corpus: <name>/report.json.
    compared = 0
    for d in sorted(Path(NATIVE).iterdir()):
        report = json.loads((d / "report.json").read_text())
        native = report["output"]
        mine = imgest.process(report["input"])
        where = Path(report["input"]).stem
        assert mine.dominant_color == (native["dominant_color"] or {}).get("hex"), where
        assert mine.placeholder == native["placeholder"], where
        assert mine.source == native["source"], where
        for v in native["variants"]:
            got = mine.variants[v["name"]]
            assert (got.width, got.height) == (v["width"], v["height"]), f"{where}/{v['name']}"
            assert got.sha256 == v["sha256"], f"{where}/{v['name']} bytes differ from the CLI's"
            compared += 1
    assert compared > 0, "no native reports to compare"
    print(f"parity: {compared} variants byte-identical to the native CLI")
