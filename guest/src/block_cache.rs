//! A cache of freed small blocks in front of the component's allocator.
//!
//! Each call through the component allocates and frees its transient data
//! (lowered arguments, decoded records, the values it returns) with
//! wasi-libc's dlmalloc, which counted 14–16% of a call's instructions on
//! a reused instance. [`BlockCache`] keeps freed blocks of up to
//! [`LARGEST_CACHED`] bytes in one free list per size class and hands them
//! out again without reaching the inner allocator, as glibc's tcache does
//! natively.
//!
//! Every cached block is a whole allocation of the inner allocator, of its
//! class's size, so any of them can be given back; a class keeps at most
//! [`CACHE_BYTES_PER_CLASS`], so what one large call frees beyond that goes
//! back to the inner allocator instead of staying stranded in one size
//! (at most 3 MiB cached in all).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// The largest block size kept in the cache; larger ones go straight to
/// the inner allocator.
pub(crate) const LARGEST_CACHED: usize = 4096;

/// Bytes of freed blocks one size class keeps before returning the rest.
pub(crate) const CACHE_BYTES_PER_CLASS: usize = 128 << 10;

/// The alignment of every cached block; blocks asked with a larger one
/// bypass the cache.
const BLOCK_ALIGN: usize = 8;

/// Sizes are looked up in [`CLASS_OF`] in steps of this many bytes.
const GRANULE: usize = 16;

/// The block sizes: four per doubling from 64 bytes, every granule below.
const CLASS_SIZES: [usize; 24] = [
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
    1536, 2048, 3072, 4096,
];

/// The class of each granule count, built once at compile time.
const CLASS_OF: [u8; LARGEST_CACHED / GRANULE + 1] = class_table();

const fn class_table() -> [u8; LARGEST_CACHED / GRANULE + 1] {
    let mut table = [0u8; LARGEST_CACHED / GRANULE + 1];
    let mut granules = 0;
    let mut class = 0;
    while granules < table.len() {
        while CLASS_SIZES[class] < granules * GRANULE {
            class += 1;
        }
        table[granules] = class as u8;
        granules += 1;
    }
    table
}

/// The size class of a block of `layout`, if the cache serves it.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST_CACHED || layout.align() > BLOCK_ALIGN {
        return None;
    }
    Some(CLASS_OF[layout.size().div_ceil(GRANULE)] as usize)
}

/// The layout the inner allocator gives a block of `class`.
fn class_layout(class: usize) -> Layout {
    // CLASS_SIZES are multiples of BLOCK_ALIGN, far below isize::MAX.
    Layout::from_size_align(CLASS_SIZES[class], BLOCK_ALIGN).expect("a valid class layout")
}

/// A freed block, linked through its own first bytes.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// The freed blocks of one size class.
#[derive(Clone, Copy)]
struct FreeList {
    head: *mut FreeBlock,
    len: usize,
}

impl FreeList {
    const EMPTY: FreeList = FreeList {
        head: ptr::null_mut(),
        len: 0,
    };
}

/// An allocator that serves small blocks from free lists of earlier
/// frees, and everything else, and every miss, from `A`.
///
/// Not thread-safe: it is `Sync` only in a single-threaded wasm build,
/// where it is the component's global allocator.
pub(crate) struct BlockCache<A> {
    inner: A,
    lists: UnsafeCell<[FreeList; CLASS_SIZES.len()]>,
}

// SAFETY: a wasm32 build without the atomics feature has one thread and
// no shared memory, so the free lists are never reached concurrently.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for BlockCache<A> {}

impl<A> BlockCache<A> {
    /// An empty cache in front of `inner`.
    pub(crate) const fn new(inner: A) -> Self {
        BlockCache {
            inner,
            lists: UnsafeCell::new([FreeList::EMPTY; CLASS_SIZES.len()]),
        }
    }

    /// The free list of `class`.
    ///
    /// # Safety
    /// No other reference to the lists may be alive: the allocator is
    /// single-threaded and its methods do not call each other while one
    /// is held.
    #[allow(clippy::mut_from_ref)]
    unsafe fn list(&self, class: usize) -> &mut FreeList {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut (*self.lists.get())[class] }
    }
}

impl<A: GlobalAlloc> BlockCache<A> {
    /// A block for `layout`, whose size class (if any) is `class`.
    ///
    /// # Safety
    /// As [`GlobalAlloc::alloc`]; `class` is `class_of(layout)`.
    unsafe fn take(&self, layout: Layout, class: Option<usize>) -> *mut u8 {
        let Some(class) = class else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { self.inner.alloc(layout) };
        };
        // SAFETY: the only reference to the lists in this call.
        let list = unsafe { self.list(class) };
        let block = list.head;
        if block.is_null() {
            // SAFETY: a class layout has a non-zero size.
            return unsafe { self.inner.alloc(class_layout(class)) };
        }
        // SAFETY: a listed block is a live, unused allocation whose first
        // bytes hold the link written by `give`.
        list.head = unsafe { (*block).next };
        list.len -= 1;
        block.cast()
    }

    /// Frees `block` of `layout`, whose size class (if any) is `class`.
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`]; `class` is `class_of(layout)`.
    unsafe fn give(&self, block: *mut u8, layout: Layout, class: Option<usize>) {
        let Some(class) = class else {
            // SAFETY: allocated by `inner` with this layout (`take` and
            // `realloc` send every uncached layout there).
            return unsafe { self.inner.dealloc(block, layout) };
        };
        // SAFETY: the only reference to the lists in this call.
        let list = unsafe { self.list(class) };
        if list.len * CLASS_SIZES[class] >= CACHE_BYTES_PER_CLASS {
            // SAFETY: every block of a class was allocated by `inner` with
            // the class's layout.
            return unsafe { self.inner.dealloc(block, class_layout(class)) };
        }
        let block = block.cast::<FreeBlock>();
        // SAFETY: the block is at least 16 bytes, aligned to 8, and no
        // longer used by the caller.
        unsafe { block.write(FreeBlock { next: list.head }) };
        list.head = block;
        list.len += 1;
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for BlockCache<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, with the layout's class.
        unsafe { self.take(layout, class_of(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { self.inner.alloc_zeroed(layout) };
        };
        // SAFETY: as `alloc`; the block holds at least `layout.size()` bytes.
        unsafe {
            let block = self.take(layout, Some(class));
            if !block.is_null() {
                ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, with the layout's class.
        unsafe { self.give(block, layout, class_of(layout)) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room: a growing Vec or String stays put.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: an uncached block was allocated by `inner` with `layout`.
            (None, None) => unsafe { self.inner.realloc(block, layout, new_size) },
            (old, new) => {
                // SAFETY: a fresh allocation, then the caller's block copied
                // (both at least the smaller size) and freed as allocated.
                unsafe {
                    let moved = self.take(new_layout, new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.give(block, layout, old);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::cell::Cell;

    /// The system allocator, counting what reaches it.
    #[derive(Default)]
    struct Counting {
        allocs: Cell<usize>,
        deallocs: Cell<usize>,
        last_alloc: Cell<Option<Layout>>,
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.allocs.set(self.allocs.get() + 1);
            self.last_alloc.set(Some(layout));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            self.deallocs.set(self.deallocs.get() + 1);
            unsafe { System.dealloc(block, layout) }
        }
    }

    /// Gives every cached block back to the system, so tests leak nothing.
    fn empty(mut cache: BlockCache<Counting>) {
        for class in 0..CLASS_SIZES.len() {
            let mut block = cache.lists.get_mut()[class].head;
            while !block.is_null() {
                unsafe {
                    let next = (*block).next;
                    System.dealloc(block.cast(), class_layout(class));
                    block = next;
                }
            }
        }
    }

    /// Whether the first `n` bytes at `block` are 0, 1, 2, …
    unsafe fn counts_up(block: *const u8, n: usize) -> bool {
        unsafe { std::slice::from_raw_parts(block, n) }
            .iter()
            .enumerate()
            .all(|(i, &b)| b == i as u8)
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 1).unwrap()
    }

    #[test]
    fn every_size_maps_to_the_smallest_class_that_holds_it() {
        for size in 0..=LARGEST_CACHED {
            let class = class_of(layout(size)).unwrap();
            assert!(CLASS_SIZES[class] >= size, "size {size}");
            assert!(class == 0 || CLASS_SIZES[class - 1] < size, "size {size}");
        }
        assert_eq!(class_of(layout(LARGEST_CACHED + 1)), None);
        assert!(CLASS_SIZES.iter().all(|size| size % BLOCK_ALIGN == 0));
    }

    #[test]
    fn blocks_aligned_beyond_the_cache_bypass_it() {
        assert_eq!(class_of(Layout::from_size_align(64, 16).unwrap()), None);
        assert!(class_of(Layout::from_size_align(64, 8).unwrap()).is_some());
    }

    #[test]
    fn a_freed_block_serves_the_next_allocation_of_its_class() {
        let cache = BlockCache::new(Counting::default());
        unsafe {
            let first = cache.alloc(layout(40));
            assert_eq!(cache.inner.last_alloc.get(), Some(class_layout(2)));
            cache.dealloc(first, layout(40));
            let second = cache.alloc(layout(33));
            assert_eq!(second, first, "same class, same block");
            assert_eq!(cache.inner.allocs.get(), 1);
            assert_eq!(cache.inner.deallocs.get(), 0);
            cache.dealloc(second, layout(33));
        }
        empty(cache);
    }

    #[test]
    fn large_blocks_go_to_the_inner_allocator_both_ways() {
        let cache = BlockCache::new(Counting::default());
        unsafe {
            let block = cache.alloc(layout(LARGEST_CACHED + 1));
            assert_eq!(
                cache.inner.last_alloc.get(),
                Some(layout(LARGEST_CACHED + 1))
            );
            cache.dealloc(block, layout(LARGEST_CACHED + 1));
            assert_eq!(cache.inner.deallocs.get(), 1);
        }
        empty(cache);
    }

    #[test]
    fn a_class_keeps_at_most_its_share_and_gives_back_the_rest() {
        let cache = BlockCache::new(Counting::default());
        let kept = CACHE_BYTES_PER_CLASS / 1024;
        unsafe {
            let blocks: Vec<*mut u8> = (0..kept + 3).map(|_| cache.alloc(layout(1000))).collect();
            for &block in &blocks {
                cache.dealloc(block, layout(1000));
            }
            assert_eq!(cache.inner.deallocs.get(), 3);
            let reused: Vec<*mut u8> = (0..kept).map(|_| cache.alloc(layout(1000))).collect();
            assert!(reused.iter().all(|block| blocks.contains(block)));
            assert_eq!(
                cache.inner.allocs.get(),
                kept + 3,
                "all served from the cache"
            );
            for block in reused {
                cache.dealloc(block, layout(1000));
            }
        }
        empty(cache);
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_moves_the_contents_across() {
        let cache = BlockCache::new(Counting::default());
        unsafe {
            let block = cache.alloc(layout(20));
            for i in 0..20 {
                block.add(i).write(i as u8);
            }
            assert!(counts_up(block, 20));
            assert_eq!(cache.realloc(block, layout(20), 32), block);
            let grown = cache.realloc(block, layout(32), 3000);
            assert_ne!(grown, block);
            assert!(counts_up(grown, 20));
            let huge = cache.realloc(grown, layout(3000), 10_000);
            assert!(counts_up(huge, 20));
            let shrunk = cache.realloc(huge, layout(10_000), 10);
            assert!(counts_up(shrunk, 10));
            // The 20-byte block and the 3000-byte one were freed into the cache.
            assert_eq!(cache.alloc(layout(30)), block);
            cache.dealloc(block, layout(30));
            cache.dealloc(shrunk, layout(10));
        }
        empty(cache);
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let cache = BlockCache::new(Counting::default());
        unsafe {
            let block = cache.alloc(layout(64));
            block.write_bytes(0xAB, 64);
            cache.dealloc(block, layout(64));
            let zeroed = cache.alloc_zeroed(layout(64));
            assert_eq!(zeroed, block);
            assert!(std::slice::from_raw_parts(zeroed, 64)
                .iter()
                .all(|&b| b == 0));
            cache.dealloc(zeroed, layout(64));
        }
        empty(cache);
    }
}
