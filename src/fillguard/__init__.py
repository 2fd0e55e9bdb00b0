"""fillguard: trustworthy order execution and fill detection on Alpaca."""

__version__ = "0.1.0"
