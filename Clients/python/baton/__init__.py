from . import protocol  # noqa: F401
