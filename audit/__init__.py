"""audit: a robustness and evaluation-integrity auditor for (compressed) text classifiers."""

__version__ = "0.1.0"
