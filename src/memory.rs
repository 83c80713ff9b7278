//! Memory in use by the process, counted by the binary's allocator, so
//! that a script can be stopped when its event has taken too much: Rhai's
//! own size limits bound each value, not all of them together (a map of
//! 10,000 strings of 64 KiB each is half a gigabyte).
//!
//! The count is kept per thread: a script runs on the engine's thread, and
//! what it takes is what that thread allocates and does not free while it
//! runs. One count shared by every thread was an atomic that the engine's
//! and the store's threads fought over at each allocation (15 % of the
//! drain's CPU samples were spent on that cache line). A thread's count may go below
//! zero (it frees what another allocated): only differences mean anything.
//! It stays zero (and every check passes) where the counting allocator is
//! not installed, as in the library's unit tests.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    // No destructor, so it can be read at any point of a thread's life,
    // from inside the allocator too.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// Bytes this thread has allocated and not freed (net of what it freed for
/// other threads), by the counting allocator.
pub fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

fn count(bytes: isize) {
    LIVE.with(|live| live.set(live.get().wrapping_add(bytes)));
}

/// Wraps an allocator, counting the bytes in use.
pub struct Counting<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { self.0.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { self.0.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn each_thread_counts_what_it_allocates_and_frees() {
        let counting = Counting(System);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let before = live_bytes();
        let block = unsafe { counting.alloc(layout) } as usize;
        assert_eq!(live_bytes() - before, 1000);

        // Another thread neither sees this thread's block nor, freeing it,
        // changes this thread's count.
        let elsewhere = std::thread::spawn(move || {
            let start = live_bytes();
            unsafe { Counting(System).dealloc(block as *mut u8, layout) };
            live_bytes() - start
        })
        .join()
        .unwrap();
        assert_eq!(elsewhere, -1000);
        assert_eq!(live_bytes() - before, 1000);

        let grown = unsafe { counting.alloc_zeroed(layout) };
        let grown = unsafe { counting.realloc(grown, layout, 3000) };
        assert_eq!(live_bytes() - before, 4000);
        unsafe { counting.dealloc(grown, Layout::from_size_align(3000, 8).unwrap()) };
        assert_eq!(live_bytes() - before, 1000);
    }
}
