//! The type of every host function, as a table: upload validation checks
//! each import against it (so a wrong signature is a 422 naming the import,
//! not a link failure on every call), and the runtime links by it.

use std::fmt;

use wasmer::{FunctionType, Type};

/// A value type a host function takes or returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    I32,
    I64,
}

/// The type of one host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sig {
    pub(crate) params: &'static [Ty],
    pub(crate) results: &'static [Ty],
}

impl Ty {
    fn wasmer(self) -> Type {
        match self {
            Ty::I32 => Type::I32,
            Ty::I64 => Type::I64,
        }
    }

    fn wasmparser(self) -> wasmparser::ValType {
        match self {
            Ty::I32 => wasmparser::ValType::I32,
            Ty::I64 => wasmparser::ValType::I64,
        }
    }
}

impl Sig {
    /// The Wasmer function type.
    pub(crate) fn wasmer(&self) -> FunctionType {
        FunctionType::new(
            self.params.iter().map(|t| t.wasmer()).collect::<Vec<_>>(),
            self.results.iter().map(|t| t.wasmer()).collect::<Vec<_>>(),
        )
    }

    /// Whether a module's import type is exactly this.
    pub(crate) fn matches(&self, ty: &wasmparser::FuncType) -> bool {
        ty.params().iter().copied().eq(self.params.iter().map(|t| t.wasmparser()))
            && ty.results().iter().copied().eq(self.results.iter().map(|t| t.wasmparser()))
    }
}

fn name(t: Ty) -> &'static str {
    match t {
        Ty::I32 => "i32",
        Ty::I64 => "i64",
    }
}

/// Written as WAT writes a function type (as `wasmparser` prints a module's
/// import type), so an error shows both in one notation.
impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        for (word, tys) in [("param", self.params), ("result", self.results)] {
            if !tys.is_empty() {
                write!(f, " ({word}")?;
                for t in tys {
                    write!(f, " {}", name(*t))?;
                }
                f.write_str(")")?;
            }
        }
        f.write_str(")")
    }
}

/// Shorthands for the tables.
pub(crate) mod short {
    use super::Ty::{I32, I64};
    use super::{Sig, Ty};

    pub(crate) const fn sig(params: &'static [Ty], results: &'static [Ty]) -> Sig {
        Sig { params, results }
    }
    pub(crate) const NONE: &[Ty] = &[];
    pub(crate) const R32: &[Ty] = &[I32];
    pub(crate) const R64: &[Ty] = &[I64];
    pub(crate) const P1: &[Ty] = &[I32];
    pub(crate) const P2: &[Ty] = &[I32, I32];
    pub(crate) const P3: &[Ty] = &[I32, I32, I32];
    pub(crate) const P4: &[Ty] = &[I32, I32, I32, I32];
    pub(crate) const P5: &[Ty] = &[I32, I32, I32, I32, I32];
    pub(crate) const P6: &[Ty] = &[I32, I32, I32, I32, I32, I32];
    pub(crate) const P7: &[Ty] = &[I32, I32, I32, I32, I32, I32, I32];
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wasmer::{FunctionEnv, Store};

    use super::short::*;
    use crate::process::Process;
    use crate::{abi, wasi};

    /// The tables are what upload validation checks imports against: each
    /// entry must be the type of the host function built under its name.
    #[test]
    fn every_host_function_has_the_type_of_its_table_entry() {
        let mut store = Store::default();
        let env = FunctionEnv::new(&mut store, Process::default());
        for (name, sig) in abi::SIGNATURES {
            let f = abi::function(&mut store, &env, name).unwrap();
            assert_eq!(f.ty(&store), sig.wasmer(), "olin {name}");
        }
        for (name, sig) in wasi::SIGNATURES {
            let f = wasi::function(&mut store, &env, name).unwrap();
            assert_eq!(f.ty(&store), sig.wasmer(), "wasi {name}");
        }
        assert_eq!(abi::NAMES.len(), abi::SIGNATURES.len());
        assert!(wasi::NAMES.iter().all(|n| wasi::signature(n).is_some()), "every implemented WASI function is listed");
        assert!(wasi::function(&mut store, &env, "fd_fork").is_none());
    }

    #[test]
    fn prints_like_wat() {
        assert_eq!(sig(P2, R32).to_string(), "(func (param i32 i32) (result i32))");
        assert_eq!(sig(NONE, R64).to_string(), "(func (result i64))");
        assert_eq!(sig(NONE, NONE).to_string(), "(func)");
    }
}
