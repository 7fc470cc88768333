//! Tunes glibc's allocator for a long-running daemon.
//!
//! glibc serves allocations of 128 KiB and more with `mmap` and returns them on `free`, but
//! by default it *raises* that threshold (up to 32 MiB) whenever such a block is freed, and
//! the trim threshold with it (to twice as much). After rampart's start-up restore (reading
//! 100,000 bans from the state file and building one netlink batch of them: a few
//! multi-megabyte buffers, all freed), every later block below the raised threshold came
//! from the heap, and up to twice that much free heap was never returned to the kernel:
//! 15 MiB of the daemon's peak RSS in `bench/daemon.py` step 4b was freed memory glibc kept
//! (heap 21.3 MiB after the restore instead of 6.1). Setting the threshold explicitly turns
//! the adjustment off (glibc's `mallopt(3)`), so big transient buffers go back to the
//! kernel when they are dropped.
//!
//! The workspace forbids `unsafe`; this crate is the one reviewed exception (one FFI call,
//! no pointers), because no safe binding of `mallopt` exists. On other C libraries it does
//! nothing.

/// The `mmap` threshold rampart fixes: glibc's own default, 128 KiB.
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Fixes glibc's `mmap` threshold at [`MMAP_THRESHOLD`], which also stops glibc from
/// raising its trim threshold. Returns whether the C library accepted it (always `false`
/// where the C library is not glibc). Call it once, early in `main` of the daemon.
pub fn tune_for_daemon() -> bool {
    imp::fix_mmap_threshold(MMAP_THRESHOLD)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::os::raw::c_int;

    /// glibc's `M_MMAP_THRESHOLD` (malloc.h).
    const M_MMAP_THRESHOLD: c_int = -3;

    #[allow(unsafe_code)]
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub(super) fn fix_mmap_threshold(bytes: i32) -> bool {
        // SAFETY: `mallopt` takes two integers and only changes allocator parameters; glibc
        // documents it as safe to call at any time (it takes the arena lock itself). It
        // returns 1 on success, 0 for a rejected parameter.
        #[allow(unsafe_code)]
        let ok = unsafe { mallopt(M_MMAP_THRESHOLD, bytes) };
        ok == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn fix_mmap_threshold(_bytes: i32) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc accepts the parameter, and a large block allocated and freed afterwards does not
    /// move later allocations of that size onto the heap: a fresh allocation of the same size
    /// is again its own mapping, which shows as a page-aligned address plus glibc's 16-byte
    /// chunk header. (With the dynamic threshold, the second allocation comes from the heap,
    /// where its address is not of that form in general.)
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_threshold_and_big_blocks_stay_mapped() {
        assert!(tune_for_daemon(), "glibc refused M_MMAP_THRESHOLD");
        for _ in 0..3 {
            let big: Vec<u8> = vec![1; 4 << 20];
            let addr = big.as_ptr() as usize;
            assert_eq!(
                addr % 4096,
                16,
                "4 MiB block at {addr:#x} is not an mmap chunk"
            );
            drop(big);
        }
    }
}
