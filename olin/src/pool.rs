//! Pooled linear memories: a call's memory is a region reserved once and
//! reused, instead of a fresh 8 GiB reservation that is mapped, faulted in
//! page by page and unmapped at every call.
//!
//! Compiled code relies on the static memory style: a 4 GiB bound plus a
//! 4 GiB offset guard, all reserved, with only the memory's current size
//! readable and writable, so every access past it faults. A pooled region
//! keeps exactly that shape; what changes is its life:
//!
//! - **In the pool, every byte of a region is zero.** That is the one
//!   invariant the isolation between calls (and tenants) rests on.
//! - **Acquiring** makes the first `minimum` pages accessible and the rest
//!   inaccessible (one `mprotect` when the size differs from the region's
//!   last use), so a guest can never read past its own memory's size.
//! - **Releasing** zeroes what the guest can have written. The pages the
//!   kernel says are present or swapped (`/proc/self/pagemap`) are cleared
//!   with `memset`, so a call that touched 3 pages of a 1 MiB memory pays for
//!   3 pages, and they stay resident for the next call. When more than
//!   [`PoolConfig::keep_resident_bytes`] is present, or the page map cannot
//!   be read, the whole range is given back with `madvise(MADV_DONTNEED)`,
//!   which the kernel refills with zeros on the next touch.
//! - A region whose cleaning fails is unmapped, never reused.
//!
//! Shared memories (threads) are refused by validation and, should one get
//! here, not pooled.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use wasmer::sys::vm::{LinearMemory, VMMemoryDefinition, VMSharedMemory};
use wasmer::{MemoryError, MemoryStyle, MemoryType, Pages};

/// Bytes reserved per region: the static bound (4 GiB, all of wasm32) plus
/// the offset guard that compiled code counts on.
const RESERVE: usize = (1 << 32) + MemoryStyle::static_offset_guard_size() as usize;

/// Page-map entries read at most per release (32 KiB, a 64 MiB memory); a
/// larger memory is cleaned with `madvise` alone.
const MAX_PAGEMAP_ENTRIES: usize = 4096;

/// Memories up to this size are zeroed whole: cheaper than asking the
/// kernel which of their pages were touched (reading the page map of two
/// pages cost 3.7 µs, `memset` of 128 KiB under 1 µs, in `bench/runtime`).
const ZERO_ALL_MAX: usize = 256 << 10;

/// How many regions a pool keeps and how much of each stays resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Free regions kept for reuse; a region released when this many are
    /// free is unmapped. Size it to the calls that run at once.
    pub max_free: usize,
    /// Most bytes of a released region kept resident (zeroed in place);
    /// a region with more present is handed back to the kernel instead.
    pub keep_resident_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_free: 16, keep_resident_bytes: 1 << 20 }
    }
}

/// Counters of a pool, for tests and metrics.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Regions reserved with `mmap`.
    pub reserved: AtomicU64,
    /// Acquisitions served by a free region.
    pub reused: AtomicU64,
    /// Releases cleaned by zeroing the present pages.
    pub zeroed: AtomicU64,
    /// Releases cleaned by giving every page back to the kernel.
    pub discarded: AtomicU64,
}

/// One reserved region; unmapped on drop.
struct Region {
    base: NonNull<u8>,
    /// Bytes at the start that are readable and writable.
    accessible: usize,
}

// SAFETY: a region is plain memory owned by whoever holds the `Region`.
unsafe impl Send for Region {}

impl Region {
    fn reserve() -> Result<Region, MemoryError> {
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(MemoryError::Region(format!(
                "cannot reserve a linear memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| MemoryError::Region("mmap returned null".into()))?;
        Ok(Region { base, accessible: 0 })
    }

    /// Makes exactly the first `bytes` accessible.
    fn set_accessible(&mut self, bytes: usize) -> Result<(), MemoryError> {
        if bytes == self.accessible {
            return Ok(());
        }
        let (from, len, prot) = if bytes > self.accessible {
            (self.accessible, bytes - self.accessible, libc::PROT_READ | libc::PROT_WRITE)
        } else {
            (bytes, self.accessible - bytes, libc::PROT_NONE)
        };
        // SAFETY: the range lies inside this region's reservation (`bytes`
        // is at most the 4 GiB bound, checked by the callers).
        let rc = unsafe { libc::mprotect(self.base.as_ptr().add(from).cast(), len, prot) };
        if rc != 0 {
            return Err(MemoryError::Region(format!(
                "cannot change a linear memory's protection: {}",
                std::io::Error::last_os_error()
            )));
        }
        self.accessible = bytes;
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `reserve` and nothing points into
        // it any more (the memory that used it is gone).
        unsafe { libc::munmap(self.base.as_ptr().cast(), RESERVE) };
    }
}

/// Free regions, all zero, ready for the next call.
pub(crate) struct MemoryPool {
    free: Mutex<Vec<Region>>,
    config: PoolConfig,
    /// `/proc/self/pagemap`, which says which pages were ever touched.
    pagemap: Option<File>,
    page_size: usize,
    stats: PoolStats,
}

impl MemoryPool {
    pub(crate) fn new(config: PoolConfig) -> Arc<MemoryPool> {
        // SAFETY: sysconf has no preconditions.
        let page_size = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let pagemap = File::open("/proc/self/pagemap")
            .inspect_err(|err| {
                tracing::info!(%err, "no page map: pooled memories are cleaned with madvise only");
            })
            .ok();
        Arc::new(MemoryPool { free: Mutex::new(Vec::new()), config, pagemap, page_size, stats: PoolStats::default() })
    }

    pub(crate) fn stats(&self) -> &PoolStats {
        &self.stats
    }

    fn acquire(&self, bytes: usize) -> Result<Region, MemoryError> {
        let region = self.free.lock().pop();
        let mut region = match region {
            Some(region) => {
                self.stats.reused.fetch_add(1, Ordering::Relaxed);
                region
            }
            None => {
                self.stats.reserved.fetch_add(1, Ordering::Relaxed);
                Region::reserve()?
            }
        };
        region.set_accessible(bytes)?;
        Ok(region)
    }

    /// Zeroes what the last call can have written and keeps the region for
    /// the next one, or unmaps it.
    fn release(&self, region: Region) {
        // A region that would not be kept is unmapped (on drop) uncleaned.
        if self.free.lock().len() >= self.config.max_free {
            return;
        }
        let Some(region) = self.clean(region) else { return };
        let mut free = self.free.lock();
        if free.len() < self.config.max_free {
            free.push(region);
        }
    }

    fn clean(&self, region: Region) -> Option<Region> {
        let len = region.accessible;
        if len == 0 {
            return Some(region);
        }
        if len <= ZERO_ALL_MAX && len <= self.config.keep_resident_bytes {
            // SAFETY: the accessible range is readable and writable, and the
            // guest that used it is gone.
            unsafe { std::ptr::write_bytes(region.base.as_ptr(), 0, len) };
            self.stats.zeroed.fetch_add(1, Ordering::Relaxed);
            return Some(region);
        }
        if let Some(runs) = self.present_runs(&region) {
            let present: usize = runs.iter().map(|(_, n)| n).sum();
            if present <= self.config.keep_resident_bytes {
                for (at, n) in runs {
                    // SAFETY: each run lies within the accessible range,
                    // which is readable and writable, and the guest that
                    // used it is gone.
                    unsafe { std::ptr::write_bytes(region.base.as_ptr().add(at), 0, n) };
                }
                self.stats.zeroed.fetch_add(1, Ordering::Relaxed);
                return Some(region);
            }
        }
        // SAFETY: the range is this region's, and no one uses it.
        let rc = unsafe { libc::madvise(region.base.as_ptr().cast(), len, libc::MADV_DONTNEED) };
        if rc != 0 {
            tracing::warn!(err = %std::io::Error::last_os_error(), "cannot clean a pooled memory; unmapping it");
            return None;
        }
        self.stats.discarded.fetch_add(1, Ordering::Relaxed);
        Some(region)
    }

    /// The runs of `(offset, bytes)` of the accessible range whose pages are
    /// present or swapped out; `None` if that cannot be known.
    fn present_runs(&self, region: &Region) -> Option<Vec<(usize, usize)>> {
        let pagemap = self.pagemap.as_ref()?;
        let pages = region.accessible.div_ceil(self.page_size);
        if pages > MAX_PAGEMAP_ENTRIES {
            return None;
        }
        let mut entries = vec![0u8; pages * 8];
        let offset = (region.base.as_ptr() as usize / self.page_size) as u64 * 8;
        pagemap.read_exact_at(&mut entries, offset).ok()?;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, entry) in entries.chunks_exact(8).enumerate() {
            let word = u64::from_ne_bytes(entry.try_into().ok()?);
            // Bit 63: present in RAM; bit 62: swapped out. A page with
            // neither was never touched and reads as zero.
            if word >> 62 == 0 {
                continue;
            }
            let at = i * self.page_size;
            let n = self.page_size.min(region.accessible - at);
            match runs.last_mut() {
                Some((start, len)) if *start + *len == at => *len += n,
                _ => runs.push((at, n)),
            }
        }
        Some(runs)
    }
}

/// A linear memory in a pooled region; returns the region on drop.
pub(crate) struct PooledMemory {
    region: Option<Region>,
    pool: Arc<MemoryPool>,
    ty: MemoryType,
    size: Pages,
    definition: NonNull<VMMemoryDefinition>,
}

// SAFETY: as for Wasmer's own memories: the definition is written only by
// the thread that owns the store.
unsafe impl Send for PooledMemory {}
// SAFETY: see above.
unsafe impl Sync for PooledMemory {}

impl std::fmt::Debug for PooledMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledMemory").field("ty", &self.ty).field("size", &self.size).finish()
    }
}

impl PooledMemory {
    /// A memory of `ty` (its maximum already clamped) whose definition lives
    /// at `definition`, in the instance.
    ///
    /// # Safety
    /// `definition` must be valid for writes for as long as the memory lives.
    pub(crate) unsafe fn new(
        pool: &Arc<MemoryPool>,
        ty: &MemoryType,
        definition: NonNull<VMMemoryDefinition>,
    ) -> Result<PooledMemory, MemoryError> {
        if ty.minimum > Pages::max_value() {
            return Err(MemoryError::MinimumMemoryTooLarge {
                min_requested: ty.minimum,
                max_allowed: Pages::max_value(),
            });
        }
        let region = pool.acquire(ty.minimum.bytes().0)?;
        let base = region.base.as_ptr();
        // SAFETY: the caller guarantees the location is writable.
        unsafe { definition.as_ptr().write(VMMemoryDefinition { base, current_length: ty.minimum.bytes().0 }) };
        Ok(PooledMemory { region: Some(region), pool: pool.clone(), ty: *ty, size: ty.minimum, definition })
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            self.pool.release(region);
        }
    }
}

impl LinearMemory for PooledMemory {
    fn ty(&self) -> MemoryType {
        MemoryType { minimum: self.size, ..self.ty }
    }

    fn size(&self) -> Pages {
        self.size
    }

    fn style(&self) -> MemoryStyle {
        MemoryStyle::Static
    }

    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let previous = self.size;
        if delta.0 == 0 {
            return Ok(previous);
        }
        let refused = || MemoryError::CouldNotGrow { current: previous, attempted_delta: delta };
        let new = previous.checked_add(delta).ok_or_else(refused)?;
        if new > self.ty.maximum.unwrap_or(Pages::max_value()) || new > Pages::max_value() {
            return Err(refused());
        }
        let region = self.region.as_mut().ok_or_else(refused)?;
        let bytes = new.bytes().0;
        region.set_accessible(bytes)?;
        self.size = new;
        // SAFETY: valid for writes while the memory lives (see `new`).
        unsafe { (*self.definition.as_ptr()).current_length = bytes };
        Ok(previous)
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.definition
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::MemoryNotShared)
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Err(MemoryError::UnsupportedOperation { message: "a pooled memory cannot be copied".into() })
    }

    fn as_shared(&self) -> Result<VMSharedMemory, MemoryError> {
        Err(MemoryError::MemoryNotShared)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use wasmer::WASM_PAGE_SIZE;

    fn pool(keep: usize) -> Arc<MemoryPool> {
        MemoryPool::new(PoolConfig { max_free: 2, keep_resident_bytes: keep })
    }

    fn memory(pool: &Arc<MemoryPool>, pages: u32, def: &mut VMMemoryDefinition) -> PooledMemory {
        let ty = MemoryType::new(pages, Some(64), false);
        unsafe { PooledMemory::new(pool, &ty, NonNull::from(def)).unwrap() }
    }

    fn all_zero(def: &VMMemoryDefinition) -> bool {
        unsafe { std::slice::from_raw_parts(def.base, def.current_length) }.iter().all(|b| *b == 0)
    }

    #[test]
    fn a_reused_region_is_all_zero_whether_zeroed_or_discarded() {
        for keep in [0, 1 << 20] {
            let pool = pool(keep);
            let mut def = VMMemoryDefinition { base: std::ptr::null_mut(), current_length: 0 };
            let mut m = memory(&pool, 1, &mut def);
            m.grow(Pages(3)).unwrap();
            assert_eq!(def.current_length, 4 * WASM_PAGE_SIZE);
            unsafe { std::ptr::write_bytes(def.base, 0xAA, def.current_length) };
            let first = def.base;
            drop(m);
            let mut def = VMMemoryDefinition { base: std::ptr::null_mut(), current_length: 0 };
            let _m = memory(&pool, 2, &mut def);
            assert_eq!(def.base, first, "the region is reused");
            assert!(all_zero(&def));
            let stats = pool.stats();
            assert_eq!(stats.reserved.load(Ordering::Relaxed), 1);
            let cleaned = if keep == 0 { &stats.discarded } else { &stats.zeroed };
            assert_eq!(cleaned.load(Ordering::Relaxed), 1);
            // The pages past the size, accessible last time, are not now:
            // growing makes them accessible again, and zero.
            let mut m = _m;
            m.grow(Pages(2)).unwrap();
            assert!(all_zero(&def));
        }
    }

    #[test]
    fn growth_stops_at_the_maximum() {
        let pool = pool(1 << 20);
        let mut def = VMMemoryDefinition { base: std::ptr::null_mut(), current_length: 0 };
        let mut m = memory(&pool, 1, &mut def);
        assert!(m.grow(Pages(64)).is_err());
        assert_eq!(m.grow(Pages(63)).unwrap(), Pages(1));
        assert!(m.grow(Pages(1)).is_err());
        assert_eq!(m.size(), Pages(64));
    }
}
