"""cyclegan-convert (ccv): train CycleGAN models and convert photos and videos with them."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cyclegan-convert")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
