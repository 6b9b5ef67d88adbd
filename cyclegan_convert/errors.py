"""One error hierarchy for the library; the CLI maps it to messages and exit codes.

Exit codes: 0 ok, 1 some items failed (listed), 2 usage or environment error, 130 interrupted.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CcvError(Exception):
    """Base of every error ccv reports to a user. The message is one line that says what to do."""

    exit_code = EXIT_USAGE


class UsageError(CcvError):
    """What the user typed (arguments, options, named files) makes the whole command impossible."""


class UnknownModelError(CcvError):
    """No model in the store matches the requested name."""


class NotAGeneratorError(CcvError):
    """A weights file that is not a CycleGAN ResNet generator."""


class BackendUnavailableError(CcvError):
    """A backend (TensorRT, ONNX Runtime, CUDA) is missing or cannot run here."""


class BackendError(CcvError):
    """An inference engine that is there but fails while it runs (out of memory, a failed launch)."""


class ShapeRefused(BackendError):
    """An engine built for fixed shapes (a TensorRT profile) was given a size outside them."""


class EngineBuildError(CcvError):
    """An exported model or engine failed to build or to validate."""


class MediaError(CcvError):
    """An image or video that cannot be read or written."""


class DataError(CcvError):
    """Training data that is missing or empty."""


class DownloadError(CcvError):
    """A model download that failed (offline, server error, bad file)."""


class ItemFailed(Exception):
    """One item of a batch job (a file, a batch of frames) could not be processed; the run goes on.
    Not a ``CcvError``: it never ends a command by itself. The message is the one line shown."""


class DecodeFailed(ItemFailed):
    """An input that cannot be read."""


class InferenceFailed(ItemFailed):
    """The engine failed on this item (out of memory, a size it refuses)."""


class WriteFailed(ItemFailed):
    """An output that cannot be written."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters, or its type's name
    when it has no message: what one-line reports quote."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


class ItemsFailed(CcvError):
    """A batch job finished but some items failed; they were listed already."""

    exit_code = EXIT_ITEMS_FAILED
