"""Built-in probes; importing this package registers them (see audit.registry)."""

from audit.probes import (  # noqa: F401
    accuracy, adversarial, calibration, comparison, contamination, efficiency, longtail, shift,
)
