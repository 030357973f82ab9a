#!/usr/bin/env python3
"""Check that every test the docs and doc comments cite exists.

Run from the repository root:  python3 tests/check_citations.py
(not a test target: cargo builds only `tests/*.rs` and `tests/*/main.rs`).

It lists the tests of every test binary, and the libraries' unit tests,
with `cargo test -- --list`, then reads every backticked token of the docs
and of the comments in the Rust sources:

  `reactor::half_close::a3_...`    binary, module, function: must exist
                                   (a definition run on both transports,
                                   or one run: `...::a3_...::unix`)
  `linux_facts::v1_...`            binary of one file, function: must exist
  `src/state.rs::tests::x`         a unit test, by file and module path
  `::e2_len_stays_until_changed`   the previous path, last part replaced
  `reactor::half_close`            a module: bare names that follow it in
                                   the same paragraph must be its tests
  `tests/...`                      a path: must exist
  `a3_eof_exactly_once_...`        a bare name with a scenario-id prefix, or
                                   with three underscores or more: must
                                   name some test (or, for the latter, an
                                   identifier in the sources; else a warning)

It also checks that the scenario id at the start of a test's name (`a3_`,
`r10_`) is defined: a row of a table in docs/scenarios.md.

Exit status 1 if any citation names nothing or any id is undefined.
"""
import glob, os, re, subprocess, sys

BINARIES = [os.path.basename(p)[:-3] for p in glob.glob("tests/*.rs")]
BINARIES += [os.path.basename(os.path.dirname(p)) for p in glob.glob("tests/*/main.rs")]

def listed(args):
    out = subprocess.run(["cargo", "test", "-q", "--features", "tls"] + args + ["--", "--list"],
                         capture_output=True, text=True, check=True).stdout
    return [l[: -len(": test")] for l in out.splitlines() if l.endswith(": test")]

# A test definition run on several transports (tests/util/transport.rs:
# `transports!`, `transport_pairs!`) is a module of tests named by transport:
# `reactor::half_close::a1_x::tcp` and `::unix`. The definition,
# `reactor::half_close::a1_x`, is cited as a test; so is each of its runs.
TRANSPORTS = {"tcp", "unix", "tls", "tcp_to_tcp", "tcp_to_unix", "unix_to_tcp", "unix_to_unix"}
tests = set()
for b in BINARIES:
    for name in listed(["--test", b]):
        tests.add(name if name.startswith(b + "::") else f"{b}::{name}")
definitions = {t.rsplit("::", 1)[0] for t in tests if t.rsplit("::", 1)[-1] in TRANSPORTS}
tests |= definitions
units = {"src": set(listed(["-p", "halfclose", "--lib"])),
         "tools/src": set(listed(["-p", "halfclose-tools", "--lib"]))}
modules = {t.rsplit("::", k)[0] for t in tests for k in range(1, t.count("::") + 1)}
modules = (modules - tests) | set(BINARIES)
last = {}
for t in tests - {d + "::" + x for d in definitions for x in TRANSPORTS}:
    last.setdefault(t.rsplit("::", 1)[-1], set()).add(t.rsplit("::", 1)[0])
for names in units.values():
    for t in names:
        last.setdefault(t.rsplit("::", 1)[-1], set()).add("(unit)")

SOURCES = glob.glob("src/**/*.rs", recursive=True) + glob.glob("tools/src/**/*.rs", recursive=True)
SOURCES += glob.glob("examples/**/*.rs", recursive=True) + glob.glob("tests/**/*.rs", recursive=True)
SOURCES += glob.glob("benches/**/*.rs", recursive=True) + glob.glob("fuzz/fuzz_targets/*.rs")
idents = set()
for f in SOURCES:
    idents |= set(re.findall(r"\b[a-z_][a-z0-9_]*\b", open(f, encoding="utf-8").read()))

def unit_exists(cite):
    path, _, rest = cite.partition("::")
    for root, names in units.items():
        if path.startswith(root + "/"):
            mod = path[len(root) + 1 : -3]
            mod = re.sub(r"(^|/)(lib|main|mod)$", "", mod).replace("/", "::")
            return (f"{mod}::{rest}" if mod else rest) in names
    return False

ID_NAME = re.compile(r"^[a-z]\d+_[a-z0-9_]+$")
LONG_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+){3,}$")
DOCS = ["docs/scenarios.md", "README.md", "RELIABILITY.md", "BENCHMARKS.md"]
bad = warn = 0
for f in DOCS + SOURCES:
    if not os.path.exists(f):
        continue
    prev = ctx = None
    for n, line in enumerate(open(f, encoding="utf-8"), 1):
        if f.endswith(".rs"):
            m = re.match(r"\s*//[/!]?(.*)", line)
            if not m:
                prev = ctx = None
                continue
            line = m.group(1)
        if not line.strip():
            ctx = None
        for tok in re.findall(r"`([^`\s]+)`", line):
            tok = tok.rstrip(",.;:")
            if "<" in tok or tok.startswith("--"):
                continue
            problem = note = None
            if tok.startswith("::") and prev:
                tok = prev.rsplit("::", tok.count("::"))[0] + tok
            if re.match(r"^(src|tools/src)/.*\.rs::", tok):
                prev = tok
                if not unit_exists(tok):
                    problem = "no such unit test"
            elif tok in modules:
                ctx = tok
            elif tok.split("::")[0] in BINARIES and "::" in tok:
                prev = tok
                if tok not in tests:
                    problem = "no such test"
            elif tok.startswith("tests/"):
                if not os.path.exists(tok.split("::")[0]):
                    problem = "no such path"
            elif ID_NAME.match(tok) or LONG_NAME.match(tok):
                if tok in last:
                    where = last[tok]
                    if ctx and ctx not in where and f"{ctx}" not in {w.split("::")[0] for w in where}:
                        problem = f"not a test of {ctx} (it is in {sorted(where)})"
                elif ID_NAME.match(tok):
                    problem = "no test of that name"
                elif tok not in idents:
                    note = "names no test and no identifier"
            if problem:
                bad += 1
                print(f"{f}:{n}: `{tok}`: {problem}")
            elif note:
                warn += 1
                print(f"{f}:{n}: `{tok}`: warning: {note}")
defined = set(re.findall(r"^\| ([A-Za-z]\d+) \|", open("docs/scenarios.md").read(), re.M))
for name in sorted(last):
    m = re.match(r"^([a-z])(\d+)_", name)
    if m:
        sid = (m.group(1) if m.group(1) == "r" else m.group(1).upper()) + m.group(2)
        if sid not in defined:
            bad += 1
            print(f"{name}: the id {sid} is not defined in docs/scenarios.md")
print(f"{len(tests)} integration tests in {len(BINARIES)} binaries, "
      f"{sum(map(len, units.values()))} unit tests; {bad} problems, {warn} warnings")
sys.exit(1 if bad else 0)
