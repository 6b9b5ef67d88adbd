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
    """Bad arguments or inputs that make the whole command impossible."""


class UnknownModelError(CcvError):
    """No model in the store matches the requested name."""


class NotAGeneratorError(CcvError):
    """A weights file that is not a CycleGAN ResNet generator."""


class BackendUnavailableError(CcvError):
    """A backend (TensorRT, ONNX Runtime, CUDA) is missing or cannot run here."""


class EngineBuildError(CcvError):
    """An exported model or engine failed to build or to validate."""


class MediaError(CcvError):
    """An image or video that cannot be read or written."""


class DataError(CcvError):
    """Training data that is missing or empty."""


class DownloadError(CcvError):
    """A model download that failed (offline, server error, bad file)."""


class ItemsFailed(CcvError):
    """A batch job finished but some items failed; they were listed already."""

    exit_code = EXIT_ITEMS_FAILED
