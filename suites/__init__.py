"""Built-in benchmark suites (YAML plus data), installed as the package data of ``audit.suites``."""
