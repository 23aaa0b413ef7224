#!/usr/bin/env bash
# Rebuilds every example's committed .wasm from its source.
#
# Needs (Debian): clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt
# Tests use the committed .wasm files, so only authors of examples need this.
set -euo pipefail
cd "$(dirname "$0")"

clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
  -Wl,--strip-all -o hello/hello.wasm hello/hello.c
wat2wasm echo/echo.wat -o echo/echo.wasm

ls -l hello/hello.wasm echo/echo.wasm
