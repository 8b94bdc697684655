#!/usr/bin/env bash
# Build the example plugins into examples/plugins/build/: C with clang and lld (OS packages `clang lld`),
# WAT with wasmtime's wat2wasm (a dependency of awe). Usage: examples/plugins/build.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
mkdir -p "$out"
for src in "$here"/*.c; do
  name="$(basename "$src" .c)"
  # wasm32 without a libc: no start function (--no-entry), the exports are marked in the source.
  clang --target=wasm32 -O2 -nostdlib -ffreestanding -Wall -Werror \
    -Wl,--no-entry -Wl,--strip-all -o "$out/$name.wasm" "$src"
  echo "built $out/$name.wasm"
done
for src in "$here"/*.wat; do
  name="$(basename "$src" .wat)"
  python3 -c "import sys, wasmtime; open(sys.argv[2], 'wb').write(wasmtime.wat2wasm(open(sys.argv[1]).read()))" \
    "$src" "$out/$name.wasm"
  echo "built $out/$name.wasm"
done
