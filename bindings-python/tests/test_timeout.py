"""Time budget and cancellation: ``timeout=``, ``CancelToken`` from another thread, Ctrl-C."""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
import zlib

import pytest

import imgest


def noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of noise (the slowest pixels to encode), written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def slow() -> bytes:
    """~1.5 s of work: a full-size WebP of 4 MP of noise."""
    return noise_png(2000, 2000)


ORIGINAL = {"variants": [{"name": "original"}], "dominant_color": False, "placeholder": False}


def test_timeout_error_class():
    assert issubclass(imgest.ImgestTimeoutError, imgest.ImgestError)
    assert issubclass(imgest.ImgestTimeoutError, TimeoutError)
    assert imgest.error_class("timeout") is imgest.ImgestTimeoutError
    assert imgest.error_class("cancelled") is imgest.ImgestCancelledError
    assert imgest.error_codes()["timeout"] == 8 and imgest.error_codes()["cancelled"] == 9


def test_timeout_stops_process_quickly(slow: bytes):
    start = time.perf_counter()
    with pytest.raises(TimeoutError) as e:
        imgest.process(slow, timeout=0.05, **ORIGINAL)
    took = time.perf_counter() - start
    assert isinstance(e.value, imgest.ImgestTimeoutError) and e.value.code == "timeout"
    assert "50 ms budget" in str(e.value)
    assert took < 1.0, took


def test_timeout_on_a_pipeline_and_per_item_in_process_many(slow: bytes, sample: bytes):
    pipeline = imgest.Pipeline(timeout=0.05, **ORIGINAL)
    with pytest.raises(imgest.ImgestTimeoutError):
        pipeline.process(slow)
    # Each item has the whole budget: the small photo finishes, the large one times out.
    results = imgest.process_many([sample, slow, sample], timeout=0.3, **ORIGINAL)
    assert isinstance(results[0], imgest.Result) and isinstance(results[2], imgest.Result)
    assert isinstance(results[1], imgest.ImgestTimeoutError)


def test_a_generous_timeout_changes_nothing(sample: bytes):
    plain = imgest.process(sample)
    timed = imgest.process(sample, timeout=60)
    assert {n: v.sha256 for n, v in plain.variants.items()} == {n: v.sha256 for n, v in timed.variants.items()}


def test_invalid_timeouts():
    for bad in [0, -1, float("nan"), float("inf"), "1", True]:
        with pytest.raises(imgest.InvalidOptionsError):
            imgest.Pipeline(timeout=bad)
    with pytest.raises(imgest.InvalidOptionsError):
        imgest.Pipeline(timeout=1, timeout_ms=1000)
    assert "timeout_ms" in imgest.OPTION_NAMES


def test_cancel_from_another_thread(slow: bytes):
    token = imgest.CancelToken()
    cancelled_at = []

    def cancel() -> None:
        time.sleep(0.3)
        cancelled_at.append(time.perf_counter())
        token.cancel()

    t = threading.Thread(target=cancel)
    t.start()
    with pytest.raises(imgest.ImgestCancelledError) as e:
        imgest.process(slow, cancel=token, **ORIGINAL)
    late = time.perf_counter() - cancelled_at[0]
    t.join()
    assert e.value.code == "cancelled" and token.cancelled
    assert late < 0.5, late
    # The same pipeline runs on with a new token.
    assert imgest.process(noise_png(64, 64), cancel=imgest.CancelToken())


def test_process_running_in_a_thread_times_out(slow: bytes):
    errors: list = []

    def work() -> None:
        try:
            imgest.process(slow, timeout=0.1, **ORIGINAL)
        except imgest.ImgestError as e:
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1 and errors[0].code == "timeout"


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_interrupts_a_running_call(slow: bytes):
    """SIGINT during a call raises KeyboardInterrupt soon after, and the run is cancelled."""
    sent = []

    def interrupt() -> None:
        time.sleep(0.3)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        imgest.process(slow, **ORIGINAL)
    late = time.perf_counter() - sent[0]
    t.join()
    print(f"KeyboardInterrupt {late * 1000:.0f} ms after SIGINT")
    assert late < 0.5, late
    # Nothing is left running: the next call has the cores to itself and succeeds.
    assert imgest.process(noise_png(64, 64))


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX timers")
def test_a_signal_handler_that_raises_interrupts_process_many(slow: bytes):
    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.perf_counter()
        with pytest.raises(Stop):
            imgest.process_many([slow, slow], threads=2, **ORIGINAL)
        assert time.perf_counter() - start < 1.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
