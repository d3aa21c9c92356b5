#!/usr/bin/env python3
"""Instructions per wasm-guest function, from a callgrind profile of a `wasm` engine run.

Valgrind cannot name the code Wasmtime compiles; with PALISADE_WASM_PERFMAP=1 the engine writes
/tmp/perf-<pid>.map, and this script charges each instruction callgrind counted to the guest
function whose range holds it (host functions keep callgrind's names). The counts are
deterministic, unlike timings on a shared VM. See benches/README.md, "Counting the guest's instructions".

    guest_profile.py callgrind.out /tmp/perf-<pid>.map [--top N] [--function NAME]

--function lists that function's most executed instructions (offsets into it, which match
`objdump -d` of the cached .cwasm from the function's start).
"""
import argparse
import bisect
import collections
import re


def load_map(path):
    syms = []
    with open(path) as f:
        for line in f:
            addr, size, name = line.split(" ", 2)
            syms.append((int(addr, 16), int(size, 16), name.strip()))
    syms.sort()
    return syms


def position(token, prev):
    if token == "*":
        return prev
    if token[0] in "+-":
        delta = int(token[1:], 0)
        return prev + delta if token[0] == "+" else prev - delta
    return int(token, 0)


def profile(path, syms):
    starts = [s[0] for s in syms]
    names = {}
    current = None
    addr = 0
    skip_call_cost = False
    per_fn = collections.Counter()
    per_offset = collections.Counter()
    with open(path) as f:
        header = True
        for line in f:
            if header:
                if line.startswith("positions:") and "instr" not in line:
                    raise SystemExit("profile lacks instruction positions: run callgrind with --dump-instr=yes")
                if line.startswith(("fl=", "ob=", "fn=")):
                    header = False
                else:
                    continue
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                addr = position(parts[0], addr)
                if skip_call_cost:  # the inclusive cost of a call, counted in the callee
                    skip_call_cost = False
                    continue
                if len(parts) < 3:
                    continue
                cost = int(parts[2])
                name = current
                i = bisect.bisect_right(starts, addr) - 1
                if i >= 0 and addr < syms[i][0] + syms[i][1]:
                    name = "wasm:" + syms[i][2]
                    per_offset[(syms[i][2], addr - syms[i][0])] += cost
                per_fn[name or "???"] += cost
            elif line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    if line.startswith("fn="):
                        current = names.get(m.group(1))
            elif line.startswith("calls="):
                skip_call_cost = True
    return per_fn, per_offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("perfmap")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--function")
    args = ap.parse_args()
    per_fn, per_offset = profile(args.profile, load_map(args.perfmap))
    total = sum(per_fn.values())
    guest = sum(c for n, c in per_fn.items() if n.startswith("wasm:"))
    print(f"{total:>16,} instructions, {guest:,} in the guest ({100 * guest / max(total, 1):.1f}%)")
    for name, cost in per_fn.most_common(args.top):
        print(f"{cost:>16,} {100 * cost / max(total, 1):5.1f}%  {name}")
    if args.function:
        rows = [(o, c) for (n, o), c in per_offset.items() if n == args.function]
        print(f"\n{args.function}: most executed instructions (offset, count)")
        for o, c in sorted(sorted(rows, key=lambda r: -r[1])[: args.top]):
            print(f"  +{o:#x} {c:,}")


if __name__ == "__main__":
    main()
