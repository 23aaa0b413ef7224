#!/usr/bin/env bash
# Rebuilds every example's committed .wasm from its source.
#
# Needs (Debian):
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt rustc libstd-rust-dev-wasm32
# Debian's rustc (/usr/bin/rustc, 1.63) is used for the Rust guests because it
# has the wasm32 standard library; rustup's toolchain here has no wasm target.
# Tests use the committed .wasm files, so only authors of examples need this.
set -euo pipefail
cd "$(dirname "$0")"
rustc=/usr/bin/rustc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# C, WASI preview1.
for app in hello form; do
  clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
    -Wl,--strip-all -o "$app/$app.wasm" "$app/$app.c"
done

# WAT, olin ABI.
wat2wasm echo/echo.wat -o echo/echo.wasm

# Rust, olin ABI, with the guest library.
rust_guest() { # <dir> <name>
  "$rustc" --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown \
    -C opt-level=s -C panic=abort -C strip=symbols -C link-arg=--export=memory \
    --extern olin_guest="$out/libolin_guest.rlib" -L "$out" \
    -o "$1/$2.wasm" "$1/$2.rs"
}
"$rustc" --edition 2021 --crate-type rlib --crate-name olin_guest --target wasm32-unknown-unknown \
  -C opt-level=s -C panic=abort -o "$out/libolin_guest.rlib" ../guest/rust/olin-guest/src/lib.rs
rust_guest greet greet
rust_guest fetch fetch

ls -l */*.wasm
