"""Plugins for the tests: the examples built from source, and hostile modules written in WAT."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import REPO

EXAMPLES = REPO / "examples" / "plugins"

# A memory and a bump allocator that grows it: the part of ABI v1 every hostile plugin below gets right.
_PRELUDE = """
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (local.get $end))
    (local.get $p))
"""


def _module(body: str, imports: str = "") -> str:
    return f"(module {imports} {_PRELUDE} {body})"


#: Echoes its input: the well-behaved plugin a worker must still run after every hostile one.
ECHO = _module("""
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
""")

#: Counts to five million, then echoes its input: honest work over the default inline fuel budget.
BUSY = _module("""
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32)
    (loop $l (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 5000000))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
""")

#: Answers a JSON string of exactly 1 MiB ("aaa...a"), the most the default output limit allows.
BIG_OUTPUT = _module("""
  (func (export "run") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 17)))
    (memory.fill (i32.const 65536) (i32.const 97) (i32.const 1048576))
    (i32.store8 (i32.const 65536) (i32.const 34))
    (i32.store8 (i32.const 1114111) (i32.const 34))
    (i64.const 0x1000000100000))
""")

#: Every hostile plugin, with the error code its call must fail with.
HOSTILE: dict[str, tuple[str, str]] = {
    "infinite_loop": (
        _module("""(func (export "run") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))"""),
        "fuel",
    ),
    "memory_bomb": (
        _module("""
  (func (export "run") (param i32 i32) (result i64)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)"""),
        "memory",
    ),
    "deep_recursion": (
        _module("""
  (func $down (param $n i32) (result i32) (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "run") (param i32 i32) (result i64) (i64.extend_i32_u (call $down (i32.const 0))))"""),
        "stack",
    ),
    "huge_output": (
        # 8 MiB of memory, all of it claimed as output.
        _module("""
  (func (export "run") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 128)))
    (i64.const 0x800000))"""),
        "output_size",
    ),
    "unknown_import": (
        _module(
            """(func (export "run") (param i32 i32) (result i64) (call $getenv) (i64.const 0))""",
            imports='(import "env" "getenv" (func $getenv))',
        ),
        "denied_import",
    ),
    "not_json": (
        # Returns the 4 bytes at address 0..4 of a fresh memory: zeros, not JSON.
        _module("""(func (export "run") (param i32 i32) (result i64) (i64.const 4))"""),
        "invalid_output",
    ),
}

#: Not WebAssembly at all: a valid header followed by garbage.
MALFORMED = b"\0asm\x01\0\0\0garbage"


def build_examples(out: Path) -> dict[str, bytes]:
    """Build the example plugins from source with the repository's build script; name -> module bytes."""
    subprocess.run([str(EXAMPLES / "build.sh"), str(out)], check=True, capture_output=True, text=True)
    return {p.stem: p.read_bytes() for p in sorted(out.glob("*.wasm"))}
