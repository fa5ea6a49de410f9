#!/usr/bin/env python3
"""Checks the code map: a module includes only modules its CMake targets link.

Reads the module table that CMake writes (cmake/modules.cmake, plng_write_module_map)
and every C/C++ source and header in each module's folder. A module-qualified
project include, `#include "<dir>/..."` where <dir> is a module's folder, is
allowed when it names the including module itself, or a module one of whose
targets the including module's targets link, directly or transitively. So a
module lower in the map including a higher one fails, whatever the convention
says. A bare include ("config.h") is refused too: every project include names
its module, so no two headers can be confused.

  check_module_includes.py --map <module map> --source-dir <source root>

Exits 0 when every include is allowed, 1 with one line per violation otherwise.
"""
import argparse
import os
import re
import sys

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


class Module:
    def __init__(self, folder, targets, includes_anything):
        self.folder = folder
        self.targets = targets
        self.includes_anything = includes_anything


def read_map(path):
    """The module table and each target's direct link items, as CMake wrote them."""
    modules, links = [], {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if fields[0] == "module" and len(fields) == 4:
                targets = fields[2].split()
                modules.append(Module(fields[1].strip("/"), targets, fields[3] == "1"))
            elif fields[0] == "target" and len(fields) == 3:
                links.setdefault(fields[1], []).extend(link_items(fields[2]))
            else:
                sys.exit(f"{path}:{number}: not a module or target line: {line!r}")
    return modules, links


def link_items(raw):
    """Target names in a LINK_LIBRARIES value: $<LINK_ONLY:x> is x; CMake's
    ::@(directory) markers and other generator expressions are dropped."""
    items = []
    for item in raw.split():
        item = re.sub(r"^\$<LINK_ONLY:(.*)>$", r"\1", item)
        if item and not item.startswith("::@") and "$<" not in item:
            items.append(item)
    return items


def closure(target, links):
    """Every target `target` links, itself included."""
    seen, stack = set(), [target]
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        stack.extend(links.get(t, []))
    return seen


def owner(path, modules):
    """The module whose folder holds `path` (the deepest one), or None."""
    best = None
    for m in modules:
        if path == m.folder or path.startswith(m.folder + "/"):
            if best is None or len(m.folder) > len(best.folder):
                best = m
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--exclude", action="append", default=[],
                        help="a folder (relative to the source root) not to check, e.g. test fixtures")
    args = parser.parse_args()

    modules, links = read_map(args.map)
    reach = {m.folder: set().union(*(closure(t, links) for t in m.targets)) if m.targets else set()
             for m in modules}
    violations, checked = [], 0
    for m in modules:
        top = os.path.join(args.source_dir, m.folder)
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if os.path.relpath(os.path.join(root, d), args.source_dir)
                             .replace(os.sep, "/") not in args.exclude)
            for name in sorted(files):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                full = os.path.join(root, name)
                rel = os.path.relpath(full, args.source_dir).replace(os.sep, "/")
                if owner(rel, modules) is not m:
                    continue  # a nested module's file: checked as that module's
                with open(full, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        match = INCLUDE.match(line)
                        if not match:
                            continue
                        if "/" not in match.group(1):
                            violations.append(
                                f'{rel}:{number}: includes "{match.group(1)}" by a bare name; '
                                f"name its module (\"<folder>/{match.group(1)}\")")
                            continue
                        included = owner(os.path.dirname(match.group(1)), modules)
                        if included is None or included is m:
                            continue
                        checked += 1
                        if m.includes_anything or reach[m.folder] & set(included.targets):
                            continue
                        violations.append(
                            f'{rel}:{number}: includes "{match.group(1)}" of module '
                            f"{included.folder}/ ({', '.join(included.targets)}), but module "
                            f"{m.folder}/ ({', '.join(m.targets)}) does not link it")
    for v in violations:
        print(v)
    print(f"{len(modules)} modules, {checked} includes across modules, "
          f"{len(violations)} not allowed by the targets' links")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
