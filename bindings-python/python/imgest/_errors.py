"""imgest's exceptions: one class per core error code (the table is ``_BY_CODE``)."""

from __future__ import annotations

from typing import Optional


class ImgestError(Exception):
    """Base class of every imgest error. ``code`` is the core's stable snake_case code."""

    code: str = "internal"

    def __init__(self, message: str, code: Optional[str] = None, limit: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        #: For ``limit_exceeded``: which limit (``"pixels"``, ``"input_bytes"``, ...).
        self.limit = limit

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedFormatError(ImgestError, ValueError):
    """An image, but in a format imgest does not accept (AVIF, HEIC, SVG, ...)."""

    code = "unsupported_format"


class NotAnImageError(ImgestError, ValueError):
    """The bytes are not an image at all."""

    code = "not_an_image"


class CorruptInputError(ImgestError, ValueError):
    """A known format, but truncated or malformed."""

    code = "corrupt_input"


class LimitExceededError(ImgestError, ValueError):
    """A size, pixel, frame or memory limit was exceeded (checked before decoding)."""

    code = "limit_exceeded"


class InvalidOptionsError(ImgestError, ValueError):
    """An option has an invalid value."""

    code = "invalid_options"


class EncodeFailedError(ImgestError):
    """An encoder failed on valid pixels."""

    code = "encode_failed"


class StorageError(ImgestError, OSError):
    """Reading or writing storage failed."""

    code = "storage"


class ImgestTimeoutError(ImgestError, TimeoutError):
    """The run took longer than its ``timeout`` and was stopped (its memory is freed).

    Also a built-in ``TimeoutError``; the same input with the same budget would most likely
    time out again."""

    code = "timeout"


class ImgestCancelledError(ImgestError):
    """The run was cancelled through its ``CancelToken``."""

    code = "cancelled"


class InternalError(ImgestError):
    """A bug in imgest; please report it."""

    code = "internal"


_BY_CODE = {
    cls.code: cls
    for cls in (
        UnsupportedFormatError,
        NotAnImageError,
        CorruptInputError,
        LimitExceededError,
        InvalidOptionsError,
        EncodeFailedError,
        StorageError,
        ImgestTimeoutError,
        ImgestCancelledError,
        InternalError,
    )
}


def error_class(code: str) -> type[ImgestError]:
    """The exception class for a core error code (``InternalError`` for an unknown one)."""
    return _BY_CODE.get(code, InternalError)


def from_core(err: BaseException) -> ImgestError:
    """Converts the native module's ``CoreError(code, message, limit)``."""
    code, message, limit = err.args
    return error_class(code)(message, code, limit)
