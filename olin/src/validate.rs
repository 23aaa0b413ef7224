//! Checks an uploaded module without compiling it, and is the one gate every
//! module passes: [`Runtime::compile`](crate::Runtime::compile) runs it
//! first, the control plane on upload and `olinctl` before uploading. With
//! `wasmparser` alone, in milliseconds:
//! - valid WebAssembly using only the allowed proposals ([`crate::features`]);
//! - imports only functions, from one ABI, each a function this host links,
//!   with exactly its type, and at most [`MAX_IMPORTS`] of them;
//! - an exported `_start: () -> ()`, and no export under a name the
//!   runtime reserves;
//! - at most one memory, declared within the maximum; at most
//!   [`MAX_TABLES`] tables of at most [`MAX_TABLE_ELEMENTS`] entries each
//!   (the engine caps their growth at the same size).

use wasmparser::types::EntityType;
use wasmparser::{CompositeInnerType, Encoding, Parser, Payload, Validator};

use crate::engine::CompileError;
use crate::{Abi, abi, features, wasi};

/// Most imports a module may declare: a host function is built per import
/// and call, so this bounds the per-call linking work (a C CGI program
/// imports about eight, a Rust one a dozen).
pub const MAX_IMPORTS: usize = 256;

/// Most tables a module may declare.
pub const MAX_TABLES: u32 = 4;

/// Most entries a table may have, initially or after `table.grow` (an entry
/// is a host pointer: a table is host memory outside the memory cap).
pub const MAX_TABLE_ELEMENTS: u64 = 100_000;

/// The export under which the runtime calls a module's start function after
/// the call's fuel is set (see `start`); a module may not export it itself.
pub(crate) const START_EXPORT: &str = "olin:start";

/// Export names the runtime adds (`olin:start`, `olin:interrupt`, the
/// metering globals).
fn is_reserved_export(name: &str) -> bool {
    name.starts_with("olin:") || name.starts_with("wasmer_metering_")
}

/// What an accepted module is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The ABI its imports select.
    pub abi: Abi,
    /// Its imports, `module::name`, in order.
    pub imports: Vec<String>,
    /// The initial size of its memory, in 64 KiB pages (0 without memory).
    pub memory_pages: u64,
    /// The function its start section names, if it has one.
    pub start_function: Option<u32>,
}

/// A module, as WAT, that imports every host function of `abi` under its
/// exact type (olin functions from `env`): what a module may import, for
/// generators of test modules and for reference.
pub fn host_imports_wat(abi: Abi) -> String {
    let (namespace, table) = match abi {
        Abi::WasiP1 => (wasi::NAMESPACE, wasi::SIGNATURES),
        _ => ("env", abi::SIGNATURES),
    };
    let imports: String =
        table.iter().map(|(name, sig)| format!("(import \"{namespace}\" \"{name}\" {sig})\n")).collect();
    format!("(module\n{imports})")
}

/// Validates `bytes` as a module Olincloud can run with memories of at most
/// `max_memory_pages` pages.
///
/// # Errors
/// [`CompileError::Invalid`] for bytes that are not a valid core module of
/// the allowed feature set (with the byte offset of the fault), and the
/// variant naming any other rule broken: [`CompileError::UnsupportedImport`],
/// [`CompileError::ImportSignature`], [`CompileError::TooManyImports`],
/// [`CompileError::MixedAbi`], [`CompileError::NoStart`],
/// [`CompileError::ReservedExport`], [`CompileError::MemoryTooLarge`],
/// [`CompileError::TooManyTables`], [`CompileError::TableTooLarge`].
pub fn validate(bytes: &[u8], max_memory_pages: u32) -> Result<ModuleInfo, CompileError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(CompileError::Invalid("not a WebAssembly module (it does not start with \\0asm)".to_owned()));
    }
    if let Some(Ok(Payload::Version { encoding: Encoding::Component, .. })) = Parser::new(0).parse_all(bytes).next() {
        return Err(CompileError::Invalid(
            "this is a WebAssembly component; Olincloud runs core modules (olin ABI or WASI preview1)".to_owned(),
        ));
    }
    let types = Validator::new_with_features(features::validator())
        .validate_all(bytes)
        .map_err(|e| CompileError::Invalid(e.to_string()))?;
    let types = types.as_ref();

    let count = types.core_imports().into_iter().flatten().count();
    if count > MAX_IMPORTS {
        return Err(CompileError::TooManyImports { count, max: MAX_IMPORTS });
    }
    let mut imports = Vec::with_capacity(count);
    let (mut olin, mut wasi_seen) = (false, false);
    for (module, name, ty) in types.core_imports().into_iter().flatten() {
        let unsupported = || CompileError::UnsupportedImport { module: module.to_owned(), name: name.to_owned() };
        let (EntityType::Func(id) | EntityType::FuncExact(id)) = ty else {
            return Err(unsupported());
        };
        let expected = if abi::NAMESPACES.contains(&module) {
            olin = true;
            abi::signature(name)
        } else if module == wasi::NAMESPACE {
            wasi_seen = true;
            wasi::signature(name)
        } else {
            None
        };
        let expected = expected.ok_or_else(unsupported)?;
        let CompositeInnerType::Func(found) = &types[id].composite_type.inner else {
            return Err(unsupported());
        };
        if !expected.matches(found) {
            return Err(CompileError::ImportSignature {
                module: module.to_owned(),
                name: name.to_owned(),
                expected: expected.to_string(),
                found: found.to_string(),
            });
        }
        imports.push(format!("{module}::{name}"));
    }
    if olin && wasi_seen {
        return Err(CompileError::MixedAbi);
    }

    let mut start_ok = false;
    for (name, ty) in types.core_exports().into_iter().flatten() {
        if is_reserved_export(name) {
            return Err(CompileError::ReservedExport { name: name.to_owned() });
        }
        if name == "_start"
            && let EntityType::Func(id) | EntityType::FuncExact(id) = ty
            && let CompositeInnerType::Func(f) = &types[id].composite_type.inner
        {
            start_ok = f.params().is_empty() && f.results().is_empty();
        }
    }
    if !start_ok {
        return Err(CompileError::NoStart);
    }

    let mut memory_pages = 0;
    for i in 0..types.memory_count() {
        let declared = types.memory_at(i).initial;
        if declared > u64::from(max_memory_pages) {
            return Err(CompileError::MemoryTooLarge {
                declared_pages: u32::try_from(declared).unwrap_or(u32::MAX),
                max_pages: max_memory_pages,
            });
        }
        memory_pages = memory_pages.max(declared);
    }
    if types.table_count() > MAX_TABLES {
        return Err(CompileError::TooManyTables { count: types.table_count(), max: MAX_TABLES });
    }
    for i in 0..types.table_count() {
        let declared = types.table_at(i).initial;
        if declared > MAX_TABLE_ELEMENTS {
            return Err(CompileError::TableTooLarge { declared, max: MAX_TABLE_ELEMENTS });
        }
    }
    let start_function = Parser::new(0).parse_all(bytes).find_map(|p| match p {
        Ok(Payload::StartSection { func, .. }) => Some(func),
        _ => None,
    });
    Ok(ModuleInfo { abi: if wasi_seen { Abi::WasiP1 } else { Abi::Olin }, imports, memory_pages, start_function })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        wat::parse_str(src).unwrap()
    }

    #[test]
    fn accepts_both_abis() {
        let olin = wat(r#"(module (import "env" "log_write" (func (param i32 i32 i32)))
            (memory (export "memory") 1) (func (export "_start")))"#);
        let info = validate(&olin, 16).unwrap();
        assert_eq!(
            info,
            ModuleInfo {
                abi: Abi::Olin,
                imports: vec!["env::log_write".into()],
                memory_pages: 1,
                start_function: None
            }
        );
        let wasi = wat(
            r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
            (memory 2) (func (export "_start")))"#,
        );
        assert_eq!(validate(&wasi, 16).unwrap().abi, Abi::WasiP1);
    }

    #[test]
    fn names_what_is_wrong() {
        let err = |src: &str| validate(&wat(src), 16).unwrap_err().to_string();
        assert!(err(r#"(module (import "env" "fork" (func)) (func (export "_start")))"#).contains("env::fork"));
        assert!(err(r#"(module (import "os" "exit" (func)) (func (export "_start")))"#).contains("os::exit"));
        assert!(err(r#"(module (import "env" "mem" (memory 1)) (func (export "_start")))"#).contains("env::mem"));
        assert!(err(r#"(module (func (export "main")))"#).contains("_start"));
        assert!(err(r#"(module (func (export "_start") (param i32)))"#).contains("_start"));
        assert!(err(r#"(module (memory 17) (func (export "_start")))"#).contains("17 pages"));
        assert!(
            err(r#"(module (import "env" "time_now" (func (result i64)))
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (func (export "_start")))"#)
            .contains("both")
        );
    }

    #[test]
    fn the_feature_set_is_enforced() {
        let err = |src: &str| validate(&wat(src), 16).unwrap_err();
        let invalid = |src: &str| match err(src) {
            CompileError::Invalid(msg) => msg,
            other => panic!("{other}"),
        };
        invalid(r#"(module (memory 1 1 shared) (func (export "_start")))"#);
        invalid(r#"(module (memory 1) (memory 1) (func (export "_start")))"#);
        invalid(r#"(module (memory i64 1) (func (export "_start")))"#);
        invalid(r#"(module (func (export "_start") return_call 0))"#);
        let ok = r#"(module (memory 1) (table 2 funcref) (func (export "_start")
            (drop (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4)))
            (memory.fill (i32.const 0) (i32.const 0) (i32.const 1))))"#;
        validate(&wat(ok), 16).unwrap();
    }

    #[test]
    fn imports_tables_and_exports_are_bounded() {
        let err = |src: &str| validate(&wat(src), 16).unwrap_err().to_string();
        let sig = err(r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32)))
            (func (export "_start")))"#);
        assert!(sig.contains("wasi_snapshot_preview1::fd_write"), "{sig}");
        assert!(sig.contains("(func (param i32 i32 i32 i32) (result i32))"), "{sig}");
        let olin_sig = err(r#"(module (import "env" "time_now" (func (result i32))) (func (export "_start")))"#);
        assert!(olin_sig.contains("env::time_now"), "{olin_sig}");
        let many: String = (0..MAX_IMPORTS + 1).map(|_| r#"(import "env" "time_now" (func (result i64)))"#).collect();
        assert!(err(&format!(r#"(module {many} (func (export "_start")))"#)).contains("imports"));
        assert!(err(r#"(module (table 100001 funcref) (func (export "_start")))"#).contains("100001"));
        let tables = "(table 1 funcref)".repeat(5);
        assert!(err(&format!(r#"(module {tables} (func (export "_start")))"#)).contains("tables"));
        assert!(
            err(r#"(module (global (export "wasmer_metering_remaining_points") i64 (i64.const 0)) (func (export "_start")))"#)
                .contains("reserved")
        );
        let start = validate(&wat(r#"(module (func $s) (start $s) (func (export "_start")))"#), 16).unwrap();
        assert_eq!(start.start_function, Some(0));
    }

    #[test]
    fn the_host_imports_module_validates_as_imports() {
        for abi in [Abi::Olin, Abi::WasiP1] {
            let text = host_imports_wat(abi);
            let with_start = format!("{}(func (export \"_start\")))", text.trim_end_matches(')'));
            let info = validate(&wat(&with_start), 16).unwrap();
            assert_eq!(info.abi, abi);
            assert!(info.imports.len() > 20, "{abi:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_module() {
        assert!(validate(b"hello", 16).unwrap_err().to_string().contains("\\0asm"));
        assert!(validate(b"\0asm\x01\0\0\0\x01\xff", 16).unwrap_err().to_string().contains("invalid WebAssembly"));
        let component = b"\0asm\x0d\0\x01\0";
        assert!(validate(component, 16).unwrap_err().to_string().contains("component"));
    }

    #[test]
    fn accepts_the_examples() {
        let hello = include_bytes!("../../examples/hello/hello.wasm");
        assert_eq!(validate(hello, 2048).unwrap().abi, Abi::WasiP1);
        let echo = include_bytes!("../../examples/echo/echo.wasm");
        assert_eq!(validate(echo, 2048).unwrap().abi, Abi::Olin);
    }
}
