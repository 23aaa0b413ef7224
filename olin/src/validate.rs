//! Checks an uploaded module without compiling it: the same rules as
//! [`Runtime::compile`](crate::Runtime::compile) applies (valid WebAssembly,
//! imports only from one ABI and only functions this host links, an exported
//! `_start: () -> ()`, declared memory within the maximum), with the same
//! error messages, but with `wasmparser` alone, in milliseconds. The control
//! plane runs it on upload and `olinctl` before uploading.

use wasmparser::types::EntityType;
use wasmparser::{Encoding, Parser, Payload, Validator};

use crate::engine::CompileError;
use crate::{Abi, abi, wasi};

/// What an accepted module is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The ABI its imports select.
    pub abi: Abi,
    /// Its imports, `module::name`, in order.
    pub imports: Vec<String>,
    /// The initial size of its memory, in 64 KiB pages (0 without memory).
    pub memory_pages: u64,
}

/// Validates `bytes` as a module Olincloud can run with memories of at most
/// `max_memory_pages` pages.
///
/// # Errors
/// [`CompileError::Invalid`] for bytes that are not a valid core module
/// (with the byte offset of the fault), [`CompileError::UnsupportedImport`]
/// naming the first import neither ABI links, [`CompileError::MixedAbi`],
/// [`CompileError::NoStart`] and [`CompileError::MemoryTooLarge`].
pub fn validate(bytes: &[u8], max_memory_pages: u32) -> Result<ModuleInfo, CompileError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(CompileError::Invalid("not a WebAssembly module (it does not start with \\0asm)".to_owned()));
    }
    if let Some(Ok(Payload::Version { encoding: Encoding::Component, .. })) = Parser::new(0).parse_all(bytes).next() {
        return Err(CompileError::Invalid(
            "this is a WebAssembly component; Olincloud runs core modules (olin ABI or WASI preview1)".to_owned(),
        ));
    }
    let types = Validator::new().validate_all(bytes).map_err(|e| CompileError::Invalid(e.to_string()))?;
    let types = types.as_ref();

    let mut imports = Vec::new();
    let (mut olin, mut wasi_seen) = (false, false);
    for (module, name, ty) in types.core_imports().into_iter().flatten() {
        let unsupported = || CompileError::UnsupportedImport { module: module.to_owned(), name: name.to_owned() };
        if !matches!(ty, EntityType::Func(_)) {
            return Err(unsupported());
        }
        if abi::NAMESPACES.contains(&module) && abi::is_known(name) {
            olin = true;
        } else if module == wasi::NAMESPACE && wasi::is_known(name) {
            wasi_seen = true;
        } else {
            return Err(unsupported());
        }
        imports.push(format!("{module}::{name}"));
    }
    if olin && wasi_seen {
        return Err(CompileError::MixedAbi);
    }

    let start_ok = types.core_exports().into_iter().flatten().any(|(name, ty)| {
        name == "_start"
            && match ty {
                EntityType::Func(id) | EntityType::FuncExact(id) => match &types[id].composite_type.inner {
                    wasmparser::CompositeInnerType::Func(f) => f.params().is_empty() && f.results().is_empty(),
                    _ => false,
                },
                _ => false,
            }
    });
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
    Ok(ModuleInfo { abi: if wasi_seen { Abi::WasiP1 } else { Abi::Olin }, imports, memory_pages })
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
        assert_eq!(info, ModuleInfo { abi: Abi::Olin, imports: vec!["env::log_write".into()], memory_pages: 1 });
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
