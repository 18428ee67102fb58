"""Built-in probes; importing this package registers them (see audit.registry)."""

from audit.probes import accuracy, calibration, comparison, contamination  # noqa: F401
