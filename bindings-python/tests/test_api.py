"""The Python API: types, options, errors (every code), inputs, batches, threads, memory."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

import imgest

HEIC = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64


def test_version_and_defaults():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", imgest.__version__)
    d = imgest.default_options()
    assert imgest.OPTION_NAMES == tuple(d)
    assert [v["name"] for v in d["variants"]] == ["thumbnail", "medium", "large", "original"]
    assert all(v["quality"] == 85 and v["format"] == "webp" for v in d["variants"])


def test_process_result(sample: bytes):
    r = imgest.process(sample)
    assert isinstance(r, imgest.Result)
    assert list(r.variants) == ["thumbnail", "medium", "large", "original"]
    src = r.source
    assert (src["format"], src["width"], src["height"]) == ("jpeg", 1200, 800)
    assert [(v.width, v.height) for v in r.variants.values()] == [(150, 100), (800, 533), (1200, 800), (1200, 800)]
    for v in r.variants.values():
        assert isinstance(v.data, bytes) and v.data[:4] == b"RIFF" and v.data[8:12] == b"WEBP"
        assert v.size == len(v.data) and v.mime_type == "image/webp" and len(v.sha256) == 64
    assert re.fullmatch(r"#[0-9a-f]{6}", r.dominant_color)
    assert r.dominant_rgb == tuple(int(r.dominant_color[i : i + 2], 16) for i in (1, 3, 5))
    assert 1 <= len(r.palette) <= 5 and r.palette[0].hex == r.dominant_color
    assert isinstance(r.placeholder, str) and r.placeholder
    d = r.to_dict()
    json.dumps(d)  # plain data
    assert [v["name"] for v in d["variants"]] == list(r.variants) and "bytes" not in d["variants"][0]


def test_inputs_bytes_bytearray_memoryview_path(sample: bytes, tmp_path: Path):
    p = tmp_path / "in.jpg"
    p.write_bytes(sample)
    shas = {
        kind: imgest.process(data, variants=[{"name": "t", "max_width": 64}]).variants["t"].sha256
        for kind, data in [
            ("bytes", sample),
            ("bytearray", bytearray(sample)),
            ("memoryview", memoryview(sample)),
            ("str", str(p)),
            ("pathlike", p),
        ]
    }
    assert len(set(shas.values())) == 1, shas
    with pytest.raises(TypeError, match="expected bytes"):
        imgest.process(12345)  # type: ignore[arg-type]


def test_options(sample: bytes):
    r = imgest.process(
        sample,
        variants=[{"name": "a", "max_width": 100, "format": "png"}, {"name": "b", "max_height": 50, "format": "jpeg", "quality": 70}],
        dominant_color=False,
        placeholder=False,
    )
    a, b = r.variants["a"], r.variants["b"]
    assert (a.format, a.width, a.height, a.data[:4]) == ("png", 100, 67, b"\x89PNG")
    assert (b.format, b.height, b.data[:2]) == ("jpeg", 50, b"\xff\xd8")
    assert r.dominant_color is None and r.palette == [] and r.placeholder is None


def test_avif_output(sample: bytes):
    r = imgest.process(
        sample,
        variants=[{"name": "a", "max_width": 64, "format": "avif", "quality": 50, "effort": 6}],
        dominant_color=False,
        placeholder=False,
    )
    a = r.variants["a"]
    assert (a.format, a.width, a.height, a.data[4:12]) == ("avif", 64, 43, b"ftypavif")
    assert (a.mime_type, a.extension) == ("image/avif", "avif")
    with pytest.raises(imgest.InvalidOptionsError, match=r"variants\[0\]\.effort"):
        imgest.process(sample, variants=[{"name": "a", "format": "avif", "effort": 10}])


def test_avif_input(sample: bytes):
    avif = imgest.process(sample, variants=[{"name": "a", "max_width": 64, "format": "avif"}])
    r = imgest.process(avif.variants["a"].data)
    assert (r.source["format"], r.source["width"], r.source["height"]) == ("avif", 64, 43)
    assert r.variants["thumbnail"].data[8:12] == b"WEBP"
    with pytest.raises(imgest.CorruptInputError):
        imgest.process(avif.variants["a"].data[:-40])


def test_unknown_option_is_invalid_options_and_lists_valid_names():
    for call in (lambda: imgest.process(b"", qualty=80), lambda: imgest.Pipeline(qualty=80)):
        with pytest.raises(imgest.InvalidOptionsError) as e:
            call()
        assert e.value.code == "invalid_options"
        assert "`qualty`" in str(e.value)
        for name in imgest.OPTION_NAMES:
            assert f"`{name}`" in str(e.value)


def test_variant_mime_type_and_extension_come_from_the_core(sample: bytes):
    png = imgest.process(
        sample, variants=[{"name": "p", "max_width": 40, "format": "png"}], dominant_color=False
    ).variants["p"]
    assert (png.mime_type, png.extension) == ("image/png", "png")
    formats = {f: (m, e) for f, m, e in imgest._imgest.output_formats()}
    assert formats["jpeg"] == ("image/jpeg", "jpg") and formats["webp"] == ("image/webp", "webp")


def test_error_table_maps_every_code():
    codes = imgest.error_codes()
    assert list(codes) == [
        "unsupported_format", "not_an_image", "corrupt_input", "limit_exceeded",
        "invalid_options", "encode_failed", "storage", "timeout", "cancelled", "internal",
    ]
    assert codes["internal"] == 255 and codes["unsupported_format"] == 1
    expected = {
        "unsupported_format": imgest.UnsupportedFormatError,
        "not_an_image": imgest.NotAnImageError,
        "corrupt_input": imgest.CorruptInputError,
        "limit_exceeded": imgest.LimitExceededError,
        "invalid_options": imgest.InvalidOptionsError,
        "encode_failed": imgest.EncodeFailedError,
        "storage": imgest.StorageError,
        "timeout": imgest.ImgestTimeoutError,
        "cancelled": imgest.ImgestCancelledError,
        "internal": imgest.InternalError,
    }
    for code in codes:
        cls = imgest.error_class(code)
        assert cls is expected[code] and cls.code == code and issubclass(cls, imgest.ImgestError)
        # Faults in the input or the call are also ValueErrors.
        caller_fault = code in {"unsupported_format", "not_an_image", "corrupt_input", "limit_exceeded", "invalid_options"}
        assert issubclass(cls, ValueError) == caller_fault, code


@pytest.mark.parametrize(
    ("make", "options", "cls", "code"),
    [
        (lambda s: b"hello, world", {}, imgest.NotAnImageError, "not_an_image"),
        (lambda s: HEIC, {}, imgest.UnsupportedFormatError, "unsupported_format"),
        (lambda s: s[: len(s) // 3], {}, imgest.CorruptInputError, "corrupt_input"),
        (lambda s: s, {"limits": {"max_pixels": 1000}}, imgest.LimitExceededError, "limit_exceeded"),
    ],
)
def test_errors_raised(sample: bytes, make, options, cls, code):
    with pytest.raises(cls) as e:
        imgest.process(make(sample), **options)
    assert e.value.code == code and isinstance(e.value, ValueError) and str(e.value)
    if code == "limit_exceeded":
        assert e.value.limit == "pixels"


def test_invalid_option_values():
    for bad in [{"variants": []}, {"variants": [{"name": "a", "quality": 300}]}, {"limits": {"max_pixel": 1}}]:
        with pytest.raises(imgest.InvalidOptionsError) as e:
            imgest.Pipeline(**bad)
        assert e.value.code == "invalid_options"


def test_save_is_atomic(sample: bytes, tmp_path: Path):
    v = imgest.process(sample).variants["thumbnail"]
    out = tmp_path / "thumb.webp"
    v.save(out)
    assert out.read_bytes() == v.data
    assert [p.name for p in tmp_path.iterdir()] == ["thumb.webp"]  # no temporary left behind
    with pytest.raises(OSError):
        v.save(tmp_path / "missing-dir" / "x.webp")
    assert [p.name for p in tmp_path.iterdir()] == ["thumb.webp"]


def test_pipeline_and_process_many(sample: bytes):
    pipeline = imgest.Pipeline(variants=[{"name": "t", "max_width": 32}], placeholder=False)
    one = pipeline.process(sample)
    results = pipeline.process_many([sample, b"nope", HEIC, bytearray(sample)], threads=2)
    assert len(results) == 4
    assert isinstance(results[0], imgest.Result) and results[0].variants["t"].sha256 == one.variants["t"].sha256
    assert isinstance(results[1], imgest.NotAnImageError)
    assert isinstance(results[2], imgest.UnsupportedFormatError)
    assert isinstance(results[3], imgest.Result)
    assert imgest.process_many([], threads=1) == []
    with pytest.raises(ValueError):
        pipeline.process_many([sample], threads=0)


def test_the_gil_is_released(sample: bytes):
    # While another thread runs the pipeline, this thread keeps executing Python code. If the
    # call held the GIL, the counter would barely move.
    pipeline = imgest.Pipeline(placeholder=False)
    pipeline.process(sample)
    done = threading.Event()
    spent = []

    def work():
        t = time.perf_counter()
        for _ in range(3):
            pipeline.process(sample)
        spent.append(time.perf_counter() - t)
        done.set()

    worker = threading.Thread(target=work)
    counter = 0
    worker.start()
    while not done.is_set():
        counter += 1
    worker.join()
    # Pure-Python loop iterations per second of the worker's run: millions if the GIL is free.
    rate = counter / spent[0]
    print(f"main thread ran {rate:,.0f} loop iterations/s while the pipeline ran")
    assert rate > 100_000


def test_one_pipeline_serves_many_threads_at_once(sample: bytes):
    # Threads share one Pipeline (its pool of core pipelines): every call gives the bytes a call
    # alone gives. That the calls really run at once (the GIL released) is the test above; the
    # speed-up itself is measured in the benchmarks, not asserted here.
    pipeline = imgest.Pipeline(
        variants=[{"name": "m", "max_width": 800, "max_height": 800}],
        placeholder=False,
        dominant_color=False,
    )
    other = sample[:100]  # a truncated copy: an error in the middle of the others
    expected = pipeline.process(sample).variants["m"].sha256
    start = threading.Barrier(4)
    seen: list = []
    lock = threading.Lock()

    def run():
        start.wait()
        for _ in range(3):
            digest = pipeline.process(sample).variants["m"].sha256
            with pytest.raises(imgest.ImgestError):
                pipeline.process(other)
            with lock:
                seen.append(digest)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert seen == [expected] * 12


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_does_not_grow(sample: bytes):
    pipeline = imgest.Pipeline(variants=[{"name": "t", "max_width": 200}], placeholder=False)
    for _ in range(20):
        pipeline.process(sample)
    before = _rss_bytes()
    for _ in range(200):
        pipeline.process(sample)
    grown = _rss_bytes() - before
    print(f"RSS after 200 more runs: {grown / 1e6:+.1f} MB")
    assert grown < 20e6


def test_map_large_buffers_applies_unless_the_environment_decides():
    import platform
    import subprocess
    import sys

    code = "import imgest; print(imgest.map_large_buffers())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(glibc), out.stderr
    env["MALLOC_MMAP_THRESHOLD_"] = "1048576"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
