//! A module's start section, moved under the call's limits.
//!
//! Wasm runs a start function during instantiation, before the host can set
//! the call's fuel: it would run on whatever fuel the metering middleware was
//! compiled with. So before compiling, the start section is taken out and its
//! function exported as [`START_EXPORT`]; the runtime calls that export first,
//! after setting the call's fuel and under its wall clock, then `_start`. The
//! module is already valid ([`crate::validate`]), so the surgery only walks
//! top-level sections and rewrites the export section's count and tail.

use crate::engine::CompileError;
use crate::validate::START_EXPORT;

const SECTION_EXPORT: u8 = 7;
const SECTION_START: u8 = 8;
const EXPORT_FUNC: u8 = 0;

fn read_leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// `wasm` without its start section, exporting `function` as [`START_EXPORT`].
///
/// # Errors
/// [`CompileError::Invalid`] if the sections do not parse (cannot happen for
/// a validated module) or there is no export section (a valid module exports
/// `_start`).
pub(crate) fn hoist(wasm: &[u8], function: u32) -> Result<Vec<u8>, CompileError> {
    let malformed = || CompileError::Invalid("malformed section layout".to_owned());
    let mut out = Vec::with_capacity(wasm.len() + START_EXPORT.len() + 8);
    out.extend_from_slice(wasm.get(..8).ok_or_else(malformed)?);
    let mut at = 8;
    let mut exported = false;
    while at < wasm.len() {
        let id = *wasm.get(at).ok_or_else(malformed)?;
        at += 1;
        let size = read_leb(wasm, &mut at).ok_or_else(malformed)? as usize;
        let body = wasm.get(at..at + size).ok_or_else(malformed)?;
        at += size;
        match id {
            SECTION_START => {}
            SECTION_EXPORT => {
                let mut pos = 0;
                let count = read_leb(body, &mut pos).ok_or_else(malformed)?;
                let mut section = Vec::with_capacity(body.len() + START_EXPORT.len() + 8);
                write_leb(&mut section, count.checked_add(1).ok_or_else(malformed)?);
                section.extend_from_slice(body.get(pos..).ok_or_else(malformed)?);
                write_leb(&mut section, START_EXPORT.len() as u32);
                section.extend_from_slice(START_EXPORT.as_bytes());
                section.push(EXPORT_FUNC);
                write_leb(&mut section, function);
                out.push(SECTION_EXPORT);
                write_leb(&mut out, u32::try_from(section.len()).map_err(|_| malformed())?);
                out.extend_from_slice(&section);
                exported = true;
            }
            _ => {
                out.push(id);
                write_leb(&mut out, size as u32);
                out.extend_from_slice(body);
            }
        }
    }
    if exported { Ok(out) } else { Err(malformed()) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::validate::validate;

    #[test]
    fn the_start_section_becomes_an_export() {
        let wasm = wat::parse_str(
            r#"(module (func $a) (func $s (nop)) (start $s) (func (export "_start")) (memory (export "memory") 1))"#,
        )
        .unwrap();
        assert_eq!(validate(&wasm, 16).unwrap().start_function, Some(1));
        let hoisted = hoist(&wasm, 1).unwrap();
        let types = wasmparser::Validator::new().validate_all(&hoisted).unwrap();
        let exports: Vec<_> = types.as_ref().core_exports().unwrap().map(|(n, _)| n.to_owned()).collect();
        assert_eq!(exports, ["_start", "memory", START_EXPORT]);
        let no_start = wasmparser::Parser::new(0)
            .parse_all(&hoisted)
            .all(|p| !matches!(p, Ok(wasmparser::Payload::StartSection { .. })));
        assert!(no_start);
    }

    #[test]
    fn leb_round_trips() {
        for v in [0, 1, 127, 128, 16_384, u32::MAX] {
            let mut out = Vec::new();
            write_leb(&mut out, v);
            assert_eq!(read_leb(&out, &mut 0), Some(v));
        }
        assert_eq!(read_leb(&[0x80, 0x80], &mut 0), None);
    }
}
