"""sftkit's version, in its own module so that any module can import it without the package face."""

__version__ = "0.1.0"
