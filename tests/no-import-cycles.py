#!/usr/bin/env python3
"""Fails if a module of a crate imports one that imports it back.

   ./tests/no-import-cycles.py SRC_DIR...

Every `crate::...` and `super::...` path in a module's source (tests and
comments excluded) is an edge to the deepest module it names; a module's
`mod` declarations are not edges (a parent may declare children that
import it). Two modules on one cycle of edges are reported, and the
script exits 1."""
import os
import re
import sys


def modules(root):
    found = {}
    for here, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(here, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "main", "lib"):
                parts = parts[:-1]
            found["::".join(parts)] = path
    return found


def target(mods, current, path):
    segments = path.split("::")
    base = current.split("::") if current else []
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    else:
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
    for k in range(len(segments), -1, -1):
        candidate = "::".join(base + segments[:k])
        if candidate in mods:
            return candidate
    return None


def cycles(root):
    mods = modules(root)
    edges = {m: set() for m in mods}
    for module, path in mods.items():
        with open(path, encoding="utf-8") as f:
            source = f.read().split("#[cfg(test)]")[0]
        source = re.sub(r"//[^\n]*", "", source)
        # `super::x::y` and grouped imports (`super::{a, b}`, `crate::m::{..}`).
        paths = re.findall(r"\b((?:crate|super)(?:::\w+)*)::(?:\w|\{)", source)
        for use in paths:
            to = target(mods, module, use)
            if to not in (None, "", module):
                edges[module].add(to)

    def reaches(a, b, seen):
        if a == b:
            return True
        seen.add(a)
        return any(reaches(n, b, seen) for n in edges[a] if n not in seen)

    return sorted({tuple(sorted((a, b))) for a in mods for b in edges[a] if reaches(b, a, set())})


failed = False
for root in sys.argv[1:]:
    for a, b in cycles(root):
        print(f"{root}: {a} and {b} import each other (directly or around a circle)")
        failed = True
sys.exit(1 if failed else 0)
