//! Bounds-checked access to guest linear memory. Pointers and lengths arrive
//! as `i32` and are read as unsigned (wasm32); every access that falls outside
//! memory is a [`Fault`], which the ABI turns into an error code, never a trap.

use wasmer::MemoryView;

/// An out-of-bounds or otherwise unusable guest pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault;

/// Reinterprets a wasm32 `i32` pointer or length as unsigned.
pub(crate) fn u(v: i32) -> u64 {
    u64::from(v as u32)
}

fn view<'a, 'b>(mem: Option<&'a MemoryView<'b>>) -> Result<&'a MemoryView<'b>, Fault> {
    mem.ok_or(Fault)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(mem: Option<&MemoryView<'_>>, ptr: i32, len: i32) -> Result<Vec<u8>, Fault> {
    let view = view(mem)?;
    let (start, len) = (u(ptr), u(len));
    if start.checked_add(len).is_none_or(|end| end > view.data_size()) {
        return Err(Fault);
    }
    let mut buf = vec![0; usize::try_from(len).map_err(|_| Fault)?];
    view.read(start, &mut buf).map_err(|_| Fault)?;
    Ok(buf)
}

/// Reads a UTF-8 string of `len` bytes at `ptr`.
pub(crate) fn read_str(mem: Option<&MemoryView<'_>>, ptr: i32, len: i32) -> Result<String, Fault> {
    String::from_utf8(read(mem, ptr, len)?).map_err(|_| Fault)
}

/// Appends `len` bytes at `ptr` to `out`, without an intermediate copy.
pub(crate) fn read_append(mem: Option<&MemoryView<'_>>, ptr: u64, len: u64, out: &mut Vec<u8>) -> Result<(), Fault> {
    let view = view(mem)?;
    if ptr.checked_add(len).is_none_or(|end| end > view.data_size()) {
        return Err(Fault);
    }
    let len = usize::try_from(len).map_err(|_| Fault)?;
    let old = out.len();
    out.resize(old + len, 0);
    let dst = out.get_mut(old..).ok_or(Fault)?;
    view.read(ptr, dst).map_err(|_| Fault)
}

/// Checks that every `(ptr, len)` range lies inside memory; returns their
/// summed length. Nothing is copied.
pub(crate) fn ranges(mem: Option<&MemoryView<'_>>, ranges: &[(u64, u64)]) -> Result<u64, Fault> {
    let size = view(mem)?.data_size();
    ranges.iter().try_fold(0u64, |total, &(ptr, len)| match ptr.checked_add(len) {
        Some(end) if end <= size => total.checked_add(len).ok_or(Fault),
        _ => Err(Fault),
    })
}

/// Bytes filled per step by [`fill`]: a guest-sized request never becomes a
/// guest-sized host buffer.
const FILL_CHUNK: usize = 4096;

/// Fills `[ptr, ptr + len)` with bytes from `produce`, a chunk at a time.
pub(crate) fn fill(
    mem: Option<&MemoryView<'_>>,
    ptr: u64,
    len: u64,
    mut produce: impl FnMut(&mut [u8]),
) -> Result<(), Fault> {
    let view = view(mem)?;
    if ptr.checked_add(len).is_none_or(|end| end > view.data_size()) {
        return Err(Fault);
    }
    let mut chunk = [0u8; FILL_CHUNK];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(FILL_CHUNK as u64) as usize;
        let part = chunk.get_mut(..n).ok_or(Fault)?;
        produce(part);
        view.write(ptr + at, part).map_err(|_| Fault)?;
        at += n as u64;
    }
    Ok(())
}

/// Writes `data` at `ptr`.
pub(crate) fn write(mem: Option<&MemoryView<'_>>, ptr: u64, data: &[u8]) -> Result<(), Fault> {
    view(mem)?.write(ptr, data).map_err(|_| Fault)
}

/// Checks that `[ptr, ptr + len)` lies inside memory.
pub(crate) fn check(mem: Option<&MemoryView<'_>>, ptr: i32, len: i32) -> Result<(), Fault> {
    let view = view(mem)?;
    match u(ptr).checked_add(u(len)) {
        Some(end) if end <= view.data_size() => Ok(()),
        _ => Err(Fault),
    }
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32(mem: Option<&MemoryView<'_>>, ptr: u64, v: u32) -> Result<(), Fault> {
    write(mem, ptr, &v.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64(mem: Option<&MemoryView<'_>>, ptr: u64, v: u64) -> Result<(), Fault> {
    write(mem, ptr, &v.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmer::{Memory, MemoryType, Store};

    #[test]
    fn bounds_are_checked() {
        let mut store = Store::default();
        let mem = Memory::new(&mut store, MemoryType::new(1, Some(1), false)).unwrap();
        let view = mem.view(&store);
        let m = Some(&view);
        assert!(write(m, 65_532, b"abcd").is_ok());
        assert_eq!(read(m, 65_532, 4).unwrap(), b"abcd");
        assert_eq!(read(m, 65_533, 4), Err(Fault));
        assert_eq!(read(m, -1, 2), Err(Fault), "negative pointers are huge unsigned ones");
        assert_eq!(read(m, 0, -1), Err(Fault));
        assert_eq!(read(m, 65_536, 0).unwrap(), b"");
        assert_eq!(check(m, 65_536, 1), Err(Fault));
        assert!(check(m, 0, 65_536).is_ok());
        assert_eq!(write(m, 65_535, b"ab"), Err(Fault));
        assert_eq!(write_u32(m, u64::MAX - 1, 1), Err(Fault));
        write_u32(m, 8, 0xdead_beef).unwrap();
        assert_eq!(read(m, 8, 4).unwrap(), 0xdead_beef_u32.to_le_bytes());
        let mut out = b"x".to_vec();
        read_append(m, 65_532, 4, &mut out).unwrap();
        assert_eq!(out, b"xabcd");
        assert_eq!(read_append(m, 65_532, 5, &mut out), Err(Fault));
        assert_eq!(read_append(m, u64::MAX, 2, &mut out), Err(Fault));
        assert_eq!(read(None, 0, 0), Err(Fault), "a module without memory");
        assert_eq!(ranges(m, &[(0, 4), (65_532, 4)]), Ok(8));
        assert_eq!(ranges(m, &[(0, 4), (65_533, 4)]), Err(Fault), "one range out of bounds");
        assert_eq!(ranges(m, &[(u64::MAX, 2)]), Err(Fault));
        fill(m, 100, 10_000, |c| c.fill(7)).unwrap();
        assert_eq!(read(m, 100, 10_000).unwrap(), vec![7; 10_000]);
        assert_eq!(fill(m, 65_000, 1_000, |c| c.fill(1)), Err(Fault));
        write(m, 16, &[0xff, 0xfe]).unwrap();
        assert_eq!(read_str(m, 16, 2), Err(Fault), "bad UTF-8");
    }
}
