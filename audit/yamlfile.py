"""Reading user YAML (suites, claims) safely: no aliases, no duplicate keys, bounded size.

PyYAML's safe loader still expands aliases, so a 638-byte "billion laughs" suite grew to gigabytes,
and it keeps the last of two equal keys without a word (a stricter gate could vanish). Both are
refused here, as is a file over ``MAX_BYTES``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from audit.errors import SpecError

MAX_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(f"YAML aliases (*{event.anchor}) are not allowed", event.start_mark, "write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _Refused(f"key '{key}' appears twice in one mapping", key_node.start_mark, "keep one of them")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, what: str, mark, fix: str):
        self.what, self.mark, self.fix = what, mark, fix


def load(path: Path, kind: str = "suite"):
    """The YAML document in ``path``; every problem is a one-line SpecError naming the file (and line)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SpecError(f"file is larger than {MAX_BYTES >> 20} MiB", str(path), f"a {kind} file is a few KB of YAML")
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise SpecError("is a directory", str(path), f"give the {kind} YAML file") from None
    except FileNotFoundError:
        raise SpecError(f"{kind} file not found", str(path), "check the path") from None
    except UnicodeDecodeError:
        raise SpecError("file is not UTF-8 text", str(path), f"save the {kind} as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read file ({exc.strerror})", str(path), "check the path and its permissions") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except _Refused as exc:
        raise SpecError(exc.what, f"{path}:{exc.mark.line + 1}", exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"invalid YAML ({getattr(exc, 'problem', None) or exc})", where, "fix the YAML syntax") from None
    except RecursionError:
        raise SpecError("YAML nested too deeply", str(path), f"a {kind} needs a few levels of nesting") from None
