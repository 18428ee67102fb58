"""Built-in probes: one file each (a literal SPEC and run), plus an optional view <name>.html.j2 (see audit/contract.py)."""
