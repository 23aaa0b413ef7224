//! The wall clock's way into a running guest: a compile-time middleware
//! that adds an exported `i32` global, [`INTERRUPT_EXPORT`], which guest code
//! only ever reads, and checks it at every function entry and loop header
//! (every way to run unboundedly goes through one): when it is non-zero the
//! guest traps there. The watchdog sets it when a call's deadline passes.
//!
//! Why not drain the metering counter instead: the guest itself reads,
//! decrements and writes that counter in every basic block, so a write from
//! another thread is lost whenever it lands inside that read-modify-write;
//! measured, a tight loop ran up to 1.3 s past a 50 ms deadline (4 s in a
//! start section). Nothing in the guest writes this global, so one write
//! is enough, and the check costs one load and branch per loop iteration.

use std::fmt;

use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type};

/// The export under which the check's global is found after instantiation.
pub(crate) const INTERRUPT_EXPORT: &str = "olin:interrupt";

/// The middleware; one per compile (it records the global it added).
#[derive(Debug, Default)]
pub(crate) struct Interrupt {
    global: std::sync::OnceLock<u32>,
}

impl ModuleMiddleware for Interrupt {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        Box::new(Check { global: self.global.get().copied().unwrap_or(0), entered: false })
    }

    fn transform_module_info(&self, info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let index = info.globals.push(GlobalType::new(Type::I32, Mutability::Var));
        info.global_initializers.push(GlobalInit::I32Const(0));
        info.exports.insert(INTERRUPT_EXPORT.to_owned(), ExportIndex::Global(index));
        self.global
            .set(index.as_u32())
            .map_err(|_| MiddlewareError::new("olin::interrupt", "one Interrupt middleware serves one module"))
    }
}

/// The per-function half: the check after the first operator's position
/// (function entry) and after each `loop`.
struct Check {
    global: u32,
    entered: bool,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("global", &self.global).finish()
    }
}

impl Check {
    fn check<'a>(&self, state: &mut MiddlewareReaderState<'a>) {
        state.extend(&[
            Operator::GlobalGet { global_index: self.global },
            Operator::If { blockty: BlockType::Empty },
            Operator::Unreachable,
            Operator::End,
        ]);
    }
}

impl<'a> FunctionMiddleware<'a> for Check {
    fn feed(&mut self, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        if !self.entered {
            self.entered = true;
            self.check(state);
        }
        let is_loop = matches!(operator, Operator::Loop { .. });
        state.push_operator(operator);
        if is_loop {
            self.check(state);
        }
        Ok(())
    }
}
