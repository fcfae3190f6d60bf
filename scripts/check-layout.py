#!/usr/bin/env python3
"""Checks the shape of the source tree (part of scripts/test.sh).

* No import circles: no file in crates/ uses (through `use` or a path such as
  `crate::a::b::C`) a module whose file uses it back, directly or around a
  longer loop. A parent's `mod child;` line alone is not a use; paths that name
  an item re-exported with `pub use` count as uses of the file that defines it.
* No non-test source file is over MAX_LINES lines.
* vine-core reads no environment variable and holds no global state.

`--dot` prints the file import graph (Graphviz) instead of checking;
`--edges FILE` lists what FILE uses and what uses it.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MAX_LINES = 900


def strip(text):
    """Removes comments, string and char literals (keeps line count)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Module:
    def __init__(self, crate, path, file):
        self.crate, self.path, self.file = crate, path, file
        self.children = {}  # name -> Module
        self.text = ""
        self.reexports = {}  # name -> absolute path (list)


def child_dir(file):
    base = os.path.basename(file)
    if base in ("lib.rs", "main.rs", "mod.rs"):
        return os.path.dirname(file)
    return file[:-3]


MOD_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)


def load(crate, path, file, modules):
    m = Module(crate, path, file)
    with open(file, encoding="utf-8") as f:
        m.raw = f.read()
    m.text = strip(m.raw)
    modules[(crate, tuple(path))] = m
    for name in MOD_RE.findall(m.text):
        d = child_dir(file)
        for cand in (os.path.join(d, name + ".rs"), os.path.join(d, name, "mod.rs")):
            if os.path.exists(cand):
                m.children[name] = load(crate, path + [name], cand, modules)
                break
    return m


def parse_use_tree(s):
    """Expands a use tree ('a::{b, c::D as E}') into (path, alias) pairs."""
    s = s.strip()
    results = []

    def split_top(body):
        parts, depth, cur = [], 0, ""
        for ch in body:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur.strip():
            parts.append(cur)
        return parts

    def walk(prefix, tree):
        tree = tree.strip()
        if not tree:
            return
        brace = tree.find("{")
        if brace >= 0:
            head = tree[:brace].rstrip(":").strip()
            body = tree[brace + 1:tree.rfind("}")]
            pre = prefix + ([p for p in head.split("::") if p] if head else [])
            for part in split_top(body):
                walk(pre, part)
        else:
            alias = None
            if " as " in tree:
                tree, alias = [x.strip() for x in tree.split(" as ", 1)]
            segs = [p.strip() for p in tree.split("::") if p.strip()]
            if segs == ["self"]:
                results.append((prefix, alias or (prefix[-1] if prefix else None)))
            else:
                full = prefix + segs
                results.append((full, alias or full[-1]))

    walk([], s)
    return results


USE_RE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
PATH_RE = re.compile(r"(?<![\w:])((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::(?:[A-Za-z_]\w*))+)")


INLINE_RE = re.compile(r"\bmod\s+(\w+)\s*\{")


def regions(text, path):
    """Splits a file's text into (text, module path) pieces, one per inline
    `mod name { .. }` block and one for the rest."""
    rest, out, i = [], [], 0
    for m in INLINE_RE.finditer(text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        rest.append(text[i:m.start()])
        out.extend(regions(text[m.end():j - 1], path + [m.group(1)]))
        i = j
    rest.append(text[i:])
    return [("".join(rest), path)] + out


def absolute(m, segs, modules, path=None):
    """Turns a path seen in module m into an absolute module path, or None."""
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    base = list(m.path if path is None else path)
    if segs[0] in ("super", "self"):
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            segs = segs[1:]
        return base + segs
    if path in (None, m.path) and segs[0] in m.children:
        return base + segs
    return None


def resolve(crate, path, modules, depth=0):
    """The module (file) that defines what path names."""
    best, rest = None, None
    for k in range(len(path), -1, -1):
        mod = modules.get((crate, tuple(path[:k])))
        if mod:
            best, rest = mod, path[k:]
            break
    if best is None:
        return None
    if rest and rest[0] in best.reexports and depth < 8:
        target = best.reexports[rest[0]] + rest[1:]
        r = resolve(crate, target, modules, depth + 1)
        if r is not None:
            return r
    return best


def main():
    crates_dir = os.path.join(ROOT, "crates")
    modules = {}
    roots = []
    for crate in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, crate, "src")
        for root in ("lib.rs", "main.rs"):
            f = os.path.join(src, root)
            if os.path.exists(f):
                key = crate + ("" if root == "lib.rs" else ":bin")
                roots.append(load(key, [], f, modules))
        for sub in ("tests", "examples", "benches"):
            d = os.path.join(crates_dir, crate, sub)
            if os.path.isdir(d):
                for f in sorted(os.listdir(d)):
                    if f.endswith(".rs"):
                        roots.append(load(f"{crate}:{sub}/{f}", [], os.path.join(d, f), modules))

    # Re-exports and imports.
    for m in modules.values():
        m.uses = []
        for text, path in regions(m.text, list(m.path)):
            for vis, tree in USE_RE.findall(text):
                for segs, alias in parse_use_tree(tree):
                    if segs and segs[-1] == "*":
                        ab = absolute(m, segs[:-1], modules, path)
                        if ab is not None:
                            m.uses.append(ab)
                        continue
                    ab = absolute(m, segs, modules, path)
                    if ab is None:
                        continue
                    m.uses.append(ab)
                    if vis and alias and path == m.path:
                        m.reexports[alias] = ab
            body = USE_RE.sub("", text)
            for p in PATH_RE.findall(body):
                ab = absolute(m, p.split("::"), modules, path)
                if ab is not None:
                    m.uses.append(ab)

    rel = lambda f: os.path.relpath(f, ROOT)
    edges = {}
    for m in modules.values():
        out = edges.setdefault(rel(m.file), set())
        for ab in m.uses:
            t = resolve(m.crate, ab, modules)
            if t is not None and t.file != m.file:
                out.add(rel(t.file))

    if "--dot" in sys.argv:
        print("digraph imports {\n  rankdir=LR; node [shape=box, fontsize=10];")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{a[7:]}" -> "{b[7:]}";')
        print("}")
        return 0
    if "--edges" in sys.argv:
        f = sys.argv[sys.argv.index("--edges") + 1]
        print("uses:", *sorted(edges.get(f, ())), sep="\n  ")
        print("used by:", *sorted(a for a in edges if f in edges[a]), sep="\n  ")
        return 0

    problems = []
    # Strongly connected components (Tarjan).
    index, low, stack, on, sccs = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    for comp in sccs:
        lines = [f"    {a} -> {b}" for a in comp for b in sorted(edges[a]) if b in comp]
        problems.append("import circle among " + ", ".join(comp) + ":\n" + "\n".join(lines))

    for m in modules.values():
        f = rel(m.file)
        is_test = "/tests/" in f or f.endswith("/tests.rs") or "/examples/" in f
        n = m.raw.count("\n")
        if not is_test and n > MAX_LINES:
            problems.append(f"{f} has {n} lines; split it (at most {MAX_LINES} outside tests)")
        if m.crate == "vine-core" and not is_test:
            for no, line in enumerate(m.text.split("\n"), 1):
                if re.search(r"\b(std::)?env::(var|vars|var_os)\b", line):
                    problems.append(f"{f}:{no}: vine-core reads the environment; take the value as a parameter")
                if re.search(r"\b(OnceLock|OnceCell|LazyLock|lazy_static|thread_local!)\b|\bstatic\s+mut\b", line):
                    problems.append(f"{f}:{no}: vine-core holds global state; pass it in instead")

    if problems:
        print("layout check failed:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"layout: {len(edges)} files, no import circles, none over {MAX_LINES} lines, vine-core pure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
