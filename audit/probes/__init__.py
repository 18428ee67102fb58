"""Built-in probes; importing this package registers them (see audit.registry)."""

from audit.probes import accuracy, adversarial, calibration, comparison, contamination, longtail, shift  # noqa: F401
