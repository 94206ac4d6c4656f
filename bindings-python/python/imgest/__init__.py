"""imgest: turn an untrusted uploaded image into safe, web-ready variants.

Validate (magic bytes; size, pixel and frame limits from the header, before decoding), apply the
EXIF orientation, strip every piece of metadata, convert to sRGB, resize into variants, encode
(WebP q85 by default), and find the dominant colour. The work runs in Rust without holding the
GIL, so threads scale.

>>> import imgest
>>> result = imgest.process("photo.jpg")                      # doctest: +SKIP
>>> result.variants["thumbnail"].save("thumb.webp")           # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _imgest
from ._errors import (
    CorruptInputError,
    EncodeFailedError,
    ImgestCancelledError,
    ImgestError,
    ImgestTimeoutError,
    InternalError,
    InvalidOptionsError,
    LimitExceededError,
    NotAnImageError,
    StorageError,
    UnsupportedFormatError,
    error_class,
    from_core,
)

__all__ = [
    "CancelToken",
    "CorruptInputError",
    "EncodeFailedError",
    "ImgestCancelledError",
    "ImgestError",
    "ImgestTimeoutError",
    "Input",
    "InternalError",
    "InvalidOptionsError",
    "LimitExceededError",
    "NotAnImageError",
    "OPTION_NAMES",
    "PaletteColor",
    "Pipeline",
    "Result",
    "StorageError",
    "UnsupportedFormatError",
    "Variant",
    "__version__",
    "default_options",
    "error_class",
    "error_codes",
    "map_large_buffers",
    "process",
    "process_many",
]

__version__: str = _imgest.__version__

#: What ``process`` accepts: the image's bytes, or a path to read them from.
Input = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]

_DEFAULTS: Dict[str, Any] = json.loads(_imgest.default_options())

#: The option names ``process``/``Pipeline`` accept (the core's snake_case wire format).
OPTION_NAMES: Tuple[str, ...] = tuple(_DEFAULTS)

# The core's output formats: name -> (MIME type, extension).
_FORMATS: Dict[str, Tuple[str, str]] = {
    name: (mime, ext) for name, mime, ext in _imgest.output_formats()
}


def default_options() -> Dict[str, Any]:
    """The default options, as the keyword arguments ``process`` takes."""
    options: Dict[str, Any] = json.loads(_imgest.default_options())
    return options


def error_codes() -> Dict[str, int]:
    """The core's error table: code → stable number (the C and HTTP bindings use the same)."""
    return dict(_imgest.error_codes())


def map_large_buffers() -> bool:
    """Lowers the peak memory of a process that handles many images: the C allocator (glibc)
    then gives every buffer of 4 MiB or more a mapping of its own, returned to the system when
    freed, instead of keeping freed image buffers in per-thread heaps (measured on eight photos
    in one process: peak 313 → 172 MiB, same speed), and keeps up to 8 MiB of freed memory at
    the top of a heap (instead of 128 KiB) for the next image, which would otherwise fault it
    back in page by page. It changes the whole process, so imgest never does it by itself: call
    it once, early, from your program. ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` in the environment win. Returns whether it was applied (``False`` with another C library
    or when the environment sets it).
    """
    return _imgest.map_large_buffers()


@dataclass(frozen=True)
class Variant:
    """One encoded output image."""

    name: str
    width: int
    height: int
    #: ``"webp"``, ``"jpeg"``, ``"png"`` or ``"avif"``.
    format: str
    #: The encoded file.
    data: bytes = field(repr=False)
    #: Hex SHA-256 of ``data``.
    sha256: str

    @property
    def size(self) -> int:
        """``len(data)``."""
        return len(self.data)

    @property
    def mime_type(self) -> str:
        """``image/webp``, ``image/jpeg`` or ``image/png``."""
        return _FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        """The usual file extension, without the dot: ``webp``, ``jpg`` or ``png``."""
        return _FORMATS[self.format][1]

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes ``data`` to ``path`` atomically (a temporary file, then a rename)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".imgest-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


@dataclass(frozen=True)
class PaletteColor:
    """A palette entry: colour and share of the visible pixels (0–1)."""

    hex: str
    rgb: Tuple[int, int, int]
    weight: float


@dataclass(frozen=True)
class Result:
    """What one run returns."""

    #: The variants by name, in the order they were asked for.
    variants: Dict[str, Variant]
    #: Dominant colour as ``#rrggbb``, or ``None`` (disabled, or no visible pixel).
    dominant_color: Optional[str]
    #: Dominant colour as ``(r, g, b)``, or ``None``.
    dominant_rgb: Optional[Tuple[int, int, int]]
    #: Up to ``palette_size`` colours, heaviest first.
    palette: List[PaletteColor]
    #: A ThumbHash (base64) to show while the image loads, or ``None``.
    placeholder: Optional[str]
    #: Facts about the input: format, stored and upright size, orientation, frames, alpha,
    #: which metadata was found (and removed), ICC description, trailing bytes.
    source: Dict[str, Any]
    _report: Dict[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        """The run as plain JSON-able data (variants without their bytes), as the CLI reports it."""
        copy: Dict[str, Any] = json.loads(json.dumps(self._report))
        return copy


def _rgb(v: List[int]) -> Tuple[int, int, int]:
    return (v[0], v[1], v[2])


def _result(raw: Tuple[str, List[bytes]]) -> Result:
    report_json, blobs = raw
    report = json.loads(report_json)
    variants = {
        v["name"]: Variant(v["name"], v["width"], v["height"], v["format"], data, v["sha256"])
        for v, data in zip(report["variants"], blobs)
    }
    dominant = report.get("dominant_color")
    return Result(
        variants=variants,
        dominant_color=dominant["hex"] if dominant else None,
        dominant_rgb=_rgb(dominant["rgb"]) if dominant else None,
        palette=[PaletteColor(p["hex"], _rgb(p["rgb"]), p["weight"]) for p in report["palette"]],
        placeholder=report.get("placeholder"),
        source=report["source"],
        _report=report,
    )


class CancelToken:
    """Cancels running calls from another thread: pass it as ``cancel=`` and call ``cancel()``.

    A cancelled call raises ``ImgestCancelledError`` within milliseconds, its memory freed. A
    token stays cancelled; use a new one for the next call. (Ctrl-C needs no token: a running
    call stops and ``KeyboardInterrupt`` is raised.)
    """

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token = _imgest.Token()

    def cancel(self) -> None:
        """Cancels every call holding this token."""
        self._token.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return bool(self._token.cancelled)


def _timeout_ms(timeout: Optional[float]) -> Optional[int]:
    """Seconds (``None``: no budget) as the core's ``timeout_ms``, at least 1 ms."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidOptionsError(
            f"invalid option `timeout`: expected seconds as a number, not {type(timeout).__name__}",
            "invalid_options",
        )
    if not timeout > 0 or timeout == float("inf"):
        raise InvalidOptionsError(
            f"invalid option `timeout`: must be a positive, finite number of seconds, not {timeout!r}",
            "invalid_options",
        )
    return max(1, int(round(timeout * 1000)))


def _options_json(options: Mapping[str, Any], timeout: Optional[float] = None) -> Optional[str]:
    # Unknown names are the core's to refuse (`invalid_options`, with the valid names), as in
    # every binding.
    options = dict(options)
    if timeout is not None:
        if options.get("timeout_ms") is not None:
            raise InvalidOptionsError(
                "invalid option `timeout`: give `timeout` (seconds) or `timeout_ms`, not both",
                "invalid_options",
            )
        options["timeout_ms"] = _timeout_ms(timeout)
    return json.dumps(options) if options else None


class Pipeline:
    """Options validated once, reusable for many images and from many threads.

    >>> pipeline = imgest.Pipeline(variants=[{"name": "small", "max_width": 320}])  # doctest: +SKIP
    >>> pipeline.process(b"...")                                                   # doctest: +SKIP
    """

    def __init__(self, *, timeout: Optional[float] = None, **options: Any) -> None:
        """``timeout``: seconds one run may take (each item's, in ``process_many``); past it
        the run stops and raises ``ImgestTimeoutError``. Default: no limit."""
        try:
            self._runner = _imgest.Runner(_options_json(options, timeout))
        except _imgest.CoreError as e:
            raise from_core(e) from None
        limits = {**_DEFAULTS["limits"], **options.get("limits", {})}
        self._max_input_bytes: int = int(limits["max_input_bytes"])

    def _read(self, data: Input) -> Union[bytes, bytearray]:
        if isinstance(data, (bytes, bytearray)):
            return data
        if isinstance(data, memoryview):
            return data.tobytes()
        if isinstance(data, (str, os.PathLike)):
            # One byte past the limit is enough for the core to refuse an oversized file.
            with open(data, "rb") as f:
                return f.read(self._max_input_bytes + 1)
        raise TypeError(f"expected bytes, bytearray, memoryview or a path, not {type(data).__name__}")

    def process(self, data: Input, *, cancel: Optional[CancelToken] = None) -> Result:
        """Runs the pipeline on one image. ``cancel``: a ``CancelToken`` another thread may
        cancel. Ctrl-C stops the run and raises ``KeyboardInterrupt``."""
        token = cancel._token if cancel is not None else None
        try:
            return _result(self._runner.run(self._read(data), token))
        except _imgest.CoreError as e:
            raise from_core(e) from None

    def process_many(
        self,
        inputs: Iterable[Input],
        threads: Optional[int] = None,
        *,
        cancel: Optional[CancelToken] = None,
    ) -> List[Union[Result, ImgestError]]:
        """Runs the pipeline on every input on ``threads`` threads (default: all cores).

        Returns one entry per input, in order: a ``Result``, or the ``ImgestError`` that input
        raised (one bad file does not fail the batch; an input past the ``timeout`` gives an
        ``ImgestTimeoutError``). ``cancel`` stops every input still running or waiting.
        """
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        datas = [self._read(d) for d in inputs]
        token = cancel._token if cancel is not None else None
        out: List[Union[Result, ImgestError]] = []
        for item in self._runner.run_many(datas, threads, token):
            out.append(from_core(item) if isinstance(item, _imgest.CoreError) else _result(item))
        return out


def process(
    data: Input,
    *,
    timeout: Optional[float] = None,
    cancel: Optional[CancelToken] = None,
    **options: Any,
) -> Result:
    """Runs the pipeline once. ``options`` are the core's (see ``OPTION_NAMES``, ``default_options()``);
    ``timeout`` is in seconds (``ImgestTimeoutError`` past it), ``cancel`` a ``CancelToken``."""
    return Pipeline(timeout=timeout, **options).process(data, cancel=cancel)


def process_many(
    inputs: Iterable[Input],
    threads: Optional[int] = None,
    *,
    timeout: Optional[float] = None,
    cancel: Optional[CancelToken] = None,
    **options: Any,
) -> List[Union[Result, ImgestError]]:
    """``Pipeline(timeout=timeout, **options).process_many(inputs, threads, cancel=cancel)``;
    ``timeout`` bounds each input's run."""
    return Pipeline(timeout=timeout, **options).process_many(inputs, threads, cancel=cancel)
