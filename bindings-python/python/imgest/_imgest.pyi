"""The native half of imgest (pyo3). Private: use the ``imgest`` package."""

from typing import List, Optional, Tuple, Union, final

__all__ = [
    "__version__",
    "CoreError",
    "Runner",
    "Token",
    "default_options",
    "error_codes",
    "map_large_buffers",
    "output_formats",
]

__version__: str

class CoreError(Exception):
    """An error from the imgest core: args are (code, message, limit or None)."""

@final
class Token:
    """A cancellation flag shared with running calls."""

    def __new__(cls) -> "Token": ...
    def cancel(self) -> None:
        """Cancels every call holding this token."""
    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""

@final
class Runner:
    """A validated set of options, reusable from any thread."""

    def __new__(cls, options_json: Optional[str] = None) -> "Runner":
        """Validates ``options_json`` (the core's snake_case wire format; ``None`` = defaults)."""
    def run(self, data: Union[bytes, bytearray], token: Optional[Token] = None) -> Tuple[str, List[bytes]]:
        """Runs the pipeline on ``data`` without holding the GIL, until ``token`` is cancelled or
        a signal handler raises. Returns ``(report_json, [bytes])``."""
    def run_many(
        self,
        inputs: List[Union[bytes, bytearray]],
        threads: Optional[int] = None,
        token: Optional[Token] = None,
    ) -> List[Union[Tuple[str, List[bytes]], CoreError]]:
        """Runs the pipeline on every input on ``threads`` threads (all cores when ``None``),
        without holding the GIL. Returns, in input order, ``(report_json, [bytes])`` or a ``CoreError``."""

def default_options() -> str:
    """The default options as JSON (the option names and their defaults)."""

def error_codes() -> List[Tuple[str, int]]:
    """The core's error table: ``[(code, number), ...]``."""

def output_formats() -> List[Tuple[str, str, str]]:
    """The core's output formats: ``[(format, mime_type, extension), ...]``."""

def map_large_buffers() -> bool:
    """Gives allocations of 4 MiB or more their own mappings (glibc); whether it was applied."""
