"""TTBT5: an offline-first voice assistant appliance for the Raspberry Pi."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ttbt5")  # the installed release, as the updater sees it
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"
