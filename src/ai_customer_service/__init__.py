"""ai-customer-service: an AI customer-service backend."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai-customer-service")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
