//! Which WebAssembly proposals a module may use: one decision, read by both
//! upload validation ([`crate::validate`]) and the compiling engine, so a
//! module that passes upload always compiles under the same rules.
//!
//! Allowed: what C (wasi-libc) and Rust toolchains emit for wasm32 today:
//! mutable globals, sign extension, non-trapping float-to-int, multi-value,
//! bulk memory, reference types, fixed-width SIMD and extended constants.
//! Refused: threads (shared memory, atomics and `memory.atomic.wait`, which
//! could block a slot thread where no fuel is spent), multi-memory (the
//! memory cap is per memory), memory64, exception handling, tail calls,
//! relaxed SIMD (non-deterministic), GC, function references, custom page
//! sizes, wide arithmetic and the component model. Each is a door the
//! sandbox would have to budget; none is needed by a CGI program.

use wasmer::sys::Features;
use wasmparser::WasmFeatures;

/// The proposals a module may use, as the Wasmer engine's features.
pub(crate) fn engine() -> Features {
    let mut f = Features::none();
    f.reference_types = true;
    f.simd = true;
    f.bulk_memory = true;
    f.multi_value = true;
    f.extended_const = true;
    f
}

/// The same set as `wasmparser` features, for validation without compiling.
pub(crate) fn validator() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::FLOATS
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::SIMD
        | WasmFeatures::EXTENDED_CONST
        // Needed by wasmparser for `funcref`/`externref` at all.
        | WasmFeatures::GC_TYPES
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine validates with the wasmparser features Wasmer derives from
    /// its own `Features` (`wasmer-compiler`'s `validate_module`); that
    /// derivation must give exactly [`validator`].
    #[test]
    fn the_engine_and_upload_validation_agree() {
        let e = engine();
        let mut derived = WasmFeatures::empty();
        derived.set(WasmFeatures::BULK_MEMORY, e.bulk_memory);
        derived.set(WasmFeatures::THREADS, e.threads);
        derived.set(WasmFeatures::REFERENCE_TYPES, e.reference_types);
        derived.set(WasmFeatures::MULTI_VALUE, e.multi_value);
        derived.set(WasmFeatures::SIMD, e.simd);
        derived.set(WasmFeatures::TAIL_CALL, e.tail_call);
        derived.set(WasmFeatures::MULTI_MEMORY, e.multi_memory);
        derived.set(WasmFeatures::MEMORY64, e.memory64);
        derived.set(WasmFeatures::EXCEPTIONS, e.exceptions);
        derived.set(WasmFeatures::EXTENDED_CONST, e.extended_const);
        derived.set(WasmFeatures::RELAXED_SIMD, e.relaxed_simd);
        derived.set(WasmFeatures::WIDE_ARITHMETIC, e.wide_arithmetic);
        derived |= WasmFeatures::MUTABLE_GLOBAL
            | WasmFeatures::SATURATING_FLOAT_TO_INT
            | WasmFeatures::FLOATS
            | WasmFeatures::SIGN_EXTENSION
            | WasmFeatures::GC_TYPES;
        assert_eq!(derived, validator());
        assert!(!validator().contains(WasmFeatures::THREADS));
        assert!(!validator().contains(WasmFeatures::MULTI_MEMORY));
        assert!(!validator().contains(WasmFeatures::MEMORY64));
    }
}
