//! The process's memory allocator: a bump arena in `.bss` for the small, short-lived
//! allocations of one run, musl's malloc for anything larger or once the arena is full.
//!
//! A run lives a few milliseconds and frees almost nothing it would reuse, yet musl's
//! mallocng maps and unmaps a page for each size class it meets: on a cache hit that was
//! a third of the system calls. Here an allocation is an add, freeing the latest block
//! gives it back, and growing the latest block (a `Vec` being filled) happens in place.
//! Memory is never handed to another block otherwise; the arena's size bounds the waste.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

/// Arena size; pages are touched (and count as RSS) only when used.
const SIZE: usize = 1 << 20;
/// Larger blocks (ureq's buffers, an answer body) come from musl's malloc.
const MAX_BLOCK: usize = 16 * 1024;
/// The arena's own alignment, the most it can give.
const ALIGN: usize = 4096;

pub struct Arena;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

// SAFETY: bytes of the space are handed out to one block at a time (NEXT moves past a
// block atomically and back only when that block is freed), so no two threads ever
// reach the same bytes through it; the moves are AcqRel, so a thread that gets bytes
// another one freed sees that one's writes to them finished.
unsafe impl Sync for Space {}

static SPACE: Space = Space(UnsafeCell::new([0; SIZE]));
/// Offset of the first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn base() -> usize {
    SPACE.0.get() as usize
}

/// The block's offset when it lies in the arena.
fn offset(ptr: *mut u8) -> Option<usize> {
    (ptr as usize).checked_sub(base()).filter(|at| *at < SIZE)
}

// SAFETY: blocks are aligned as asked, inside the arena and disjoint (see `Space`), or
// come from `System`, to which they are returned.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_BLOCK || layout.align() > ALIGN {
            return or_exit(unsafe { System.alloc(layout) });
        }
        let mut next = NEXT.load(Acquire);
        loop {
            let start = next.next_multiple_of(layout.align());
            let end = start + layout.size();
            if end > SIZE {
                return or_exit(unsafe { System.alloc(layout) });
            }
            match NEXT.compare_exchange_weak(next, end, AcqRel, Acquire) {
                // SAFETY: start + size <= SIZE: inside the space.
                Ok(_) => return unsafe { SPACE.0.get().cast::<u8>().add(start) },
                Err(now) => next = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match offset(ptr) {
            // Only the latest block goes back; others stay until the process exits.
            Some(at) => _ = NEXT.compare_exchange(at + layout.size(), at, AcqRel, Acquire),
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match offset(ptr) {
            // The latest block grows or shrinks in place while it fits.
            Some(at)
                if new_size <= MAX_BLOCK
                    && at + new_size <= SIZE
                    && NEXT.compare_exchange(at + layout.size(), at + new_size, AcqRel, Acquire).is_ok() =>
            {
                return ptr;
            }
            Some(_) if new_size <= layout.size() => return ptr,
            None if new_size > MAX_BLOCK => return or_exit(unsafe { System.realloc(ptr, layout, new_size) }),
            _ => {}
        }
        // SAFETY: the caller guarantees new_size with this alignment is a valid layout;
        // the bytes move to a new block and the old one is freed, as the default does.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// A failed allocation ends the run at once, with exit 1 and the one line every
/// failure gets: Rust's default would abort (SIGABRT, exit 134, outside the documented
/// codes), and whatever the allocation was for cannot go on. Nothing here allocates; the
/// line holds no secret, and stdout has not been written (it is written last).
fn or_exit(block: *mut u8) -> *mut u8 {
    if block.is_null() {
        let parts: [&str; 3] = ["tokenxchange: error: ", crate::error::OUT_OF_MEMORY, "\n"];
        let iov = parts.map(|part| libc::iovec { iov_base: part.as_ptr() as *mut _, iov_len: part.len() });
        // SAFETY: one writev(2) of static buffers, then _exit(2), which never returns.
        unsafe {
            libc::writev(2, iov.as_ptr(), 3);
            libc::_exit(1);
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test binary itself runs on the arena (and its fallback), from many threads; this
    // checks what must hold whatever else runs: alignment and contents across realloc.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let arena = Arena;
        for (size, align) in [(1, 1), (24, 8), (100, 64), (5000, 4096), (20_000, 16), (40, 8192)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let block = arena.alloc(layout);
                assert!(!block.is_null() && (block as usize).is_multiple_of(align), "{size} {align}");
                std::ptr::write_bytes(block, 0xa5, size);
                let grown = arena.realloc(block, layout, size * 3);
                assert!(!grown.is_null() && (grown as usize).is_multiple_of(align), "{size} {align}");
                assert!(std::slice::from_raw_parts(grown, size).iter().all(|b| *b == 0xa5));
                let shrunk = arena.realloc(grown, Layout::from_size_align(size * 3, align).unwrap(), size);
                assert!(std::slice::from_raw_parts(shrunk, size).iter().all(|b| *b == 0xa5));
                arena.dealloc(shrunk, layout);
            }
        }
    }

    /// Threads racing for the arena each get disjoint blocks: every block keeps the
    /// pattern its thread wrote while the others write theirs.
    #[test]
    fn threads_never_share_a_block() {
        let threads: Vec<_> = (0..8u8)
            .map(|n| {
                std::thread::spawn(move || {
                    let arena = Arena;
                    let mut blocks = Vec::new();
                    for i in 0..200usize {
                        let layout = Layout::from_size_align(1 + (i * 37 + usize::from(n)) % 3000, 8).unwrap();
                        unsafe {
                            let block = arena.alloc(layout);
                            std::ptr::write_bytes(block, n, layout.size());
                            blocks.push((block, layout));
                        }
                    }
                    for (block, layout) in blocks.into_iter().rev() {
                        unsafe {
                            assert!(std::slice::from_raw_parts(block, layout.size()).iter().all(|b| *b == n));
                            arena.dealloc(block, layout);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    /// Once the arena is full, blocks come from the system allocator and work the same.
    #[test]
    fn a_full_arena_falls_back_to_the_system() {
        let arena = Arena;
        let layout = Layout::from_size_align(MAX_BLOCK, 8).unwrap();
        let mut blocks = Vec::new();
        unsafe {
            loop {
                let block = arena.alloc(layout);
                assert!(!block.is_null());
                std::ptr::write_bytes(block, 0x5a, layout.size());
                blocks.push(block);
                if offset(block).is_none() {
                    break;
                }
                assert!(blocks.len() <= SIZE / MAX_BLOCK + 1, "the arena holds at most its size");
            }
            let grown = arena.realloc(blocks.pop().unwrap(), layout, 2 * MAX_BLOCK);
            assert!(std::slice::from_raw_parts(grown, MAX_BLOCK).iter().all(|b| *b == 0x5a));
            arena.dealloc(grown, Layout::from_size_align(2 * MAX_BLOCK, 8).unwrap());
            for block in blocks.into_iter().rev() {
                arena.dealloc(block, layout);
            }
        }
    }
}
