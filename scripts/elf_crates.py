#!/usr/bin/env python3
"""Flash use of a firmware ELF by crate, from its symbols (a `cargo bloat
--crates`-like view that needs only binutils' nm): each function or constant
is charged to the crate its demangled name starts with (for `<T as Trait>`,
T's crate). Code the linker merged or inlined lands in its caller.

    scripts/elf_crates.py ELF [--top N] [--sum LABEL=crate,crate,...]

--sum adds one line: the flash of the listed crates together (e.g. the TLS
client's share of a firmware).
"""
import re
import subprocess
import sys
from collections import Counter

CRATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")


def crate_of(name: str) -> str:
    stripped = name.lstrip("<&*").removeprefix("mut ").removeprefix("dyn ")
    m = CRATE.match(stripped) or CRATE.search(name)
    if not m:
        return "[other: vectors, literals, linker symbols]"
    crate = m.group(1)
    if crate in ("_defmt", "__defmt"):
        return "defmt"
    return crate


def main() -> None:
    elf = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 0
    out = subprocess.run(
        ["nm", "-S", "-C", "--size-sort", elf], capture_output=True, text=True, check=True
    ).stdout
    per_crate: Counter = Counter()
    symbols = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[2] not in "tTrR":
            continue  # flash only: text and read-only data
        size = int(parts[1], 16)
        per_crate[crate_of(parts[3])] += size
        symbols.append((size, parts[3]))
    total = sum(per_crate.values())
    for crate, size in per_crate.most_common():
        print(f"  {size:7d}  {100 * size / total:5.1f}%  {crate}")
    print(f"  {total:7d}  total of sized symbols")
    if "--sum" in sys.argv:
        label, crates = sys.argv[sys.argv.index("--sum") + 1].split("=", 1)
        share = sum(per_crate[c] for c in crates.split(","))
        print(f"  {share:7d}  {100 * share / total:5.1f}%  {label} ({crates})")
    for size, name in sorted(symbols, reverse=True)[:top]:
        print(f"    {size:6d}  {name[:110]}")


if __name__ == "__main__":
    main()
