//! A bounded map from offender to a small value, with exact least-recently-used eviction.
//!
//! Layout, chosen for memory (a million offenders must fit in a few tens of megabytes):
//! - a slab `Vec` of slots, each holding the 8-byte key, the value and the two `u32` links of
//!   an intrusive doubly linked LRU list (24 bytes with an 8-byte value, 32 with 16);
//! - an open-addressing index (linear probing, backward-shift deletion) of `u32` slot numbers,
//!   at most half full, so it costs 8 to 16 bytes per entry (8.4 at one million entries).
//!
//! The key is not the offender but its 64-bit SipHash under a random per-detector key
//! (std's `RandomState`), which is also the index hash. Attackers choose the offenders, so
//! the hash must not be predictable; and two offenders share an entry only if their hashes
//! collide: about one chance in 37 million for a table holding a million offenders, one in
//! 2^64 for an attacker aiming at a given victim without knowing the key. Storing the hash
//! instead of the 16-byte address saves 8 bytes per offender and every rehash.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use ipnet::IpNet;
use rampart_core::Offender;

/// "No slot": the end of a list, or an empty bucket.
pub(crate) const NIL: u32 = u32::MAX;

/// Slots reserved (as address space) on the first insert: 4M slots, 128 MiB of address space
/// for the window table. Beyond that the slab grows by doubling.
const UPFRONT_SLOTS: usize = 1 << 22;

/// The most entries a table may be asked to hold (slot numbers are `u32`, `NIL` is reserved).
pub(crate) const MAX_ENTRIES: usize = 1 << 30;

/// An offender's key: the keyed hash of its 128 bits (IPv4 as its IPv4-mapped IPv6 address,
/// IPv6 as its prefix's network address; within one detector the IPv6 prefix length is
/// fixed, and a masked IPv6 network address never lies in `::ffff:0:0/96`, because such
/// addresses are IPv4, so the bits are one-to-one with offenders).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Key(u64);

impl Key {
    /// The key of an offender under `hasher`.
    pub(crate) fn of(offender: Offender, hasher: &RandomState) -> Self {
        let bits = match offender.net() {
            IpNet::V4(n) => u128::from(n.network().to_ipv6_mapped()),
            IpNet::V6(n) => u128::from(n.network()),
        };
        Self(hasher.hash_one(bits))
    }
}

/// One entry of the slab. A free slot keeps its stale key and value and is chained through
/// `next` on the free list.
struct Slot<V> {
    key: Key,
    prev: u32,
    next: u32,
    value: V,
}

/// A map of at most `limit` entries that evicts the least recently used entry to make room.
pub(crate) struct LruTable<V> {
    /// The slab. Never longer than `limit`; its capacity grows by doubling, capped at `limit`.
    slots: Vec<Slot<V>>,
    /// Open-addressing index of slot numbers (`NIL` = empty bucket). Power-of-two length, at
    /// most half full.
    buckets: Vec<u32>,
    /// Most recently used entry.
    head: u32,
    /// Least recently used entry: the next to be evicted.
    tail: u32,
    /// First free slot.
    free: u32,
    len: usize,
    limit: usize,
}

impl<V: Copy> LruTable<V> {
    /// An empty table that will hold at most `limit` entries (`1..=MAX_ENTRIES`).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            slots: Vec::new(),
            buckets: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
            limit: limit.clamp(1, MAX_ENTRIES),
        }
    }

    /// How many entries the table holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The hash of a key, as `find` and `insert` expect it (the key is a hash already).
    pub(crate) fn hash(&self, key: Key) -> u64 {
        key.0
    }

    /// Bytes of heap memory the table uses now: the slots written so far (the slab's
    /// reserved but never written tail is address space, not memory) and the index.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot<V>>() + self.buckets.capacity() * size_of::<u32>()
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// The slot holding `key`, if any. Does not count as a use.
    pub(crate) fn find(&self, key: Key, hash: u64) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let s = self.buckets[i];
            if s == NIL {
                return None;
            }
            if self.slots[s as usize].key == key {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value in slot `idx` (a slot number from `find` or `insert`).
    pub(crate) fn value(&self, idx: u32) -> &V {
        &self.slots[idx as usize].value
    }

    /// The value in slot `idx`, to change.
    pub(crate) fn value_mut(&mut self, idx: u32) -> &mut V {
        &mut self.slots[idx as usize].value
    }

    /// Marks slot `idx` as the most recently used.
    pub(crate) fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Inserts a key that is not in the table, as the most recently used entry. When the table
    /// is full, the least recently used entry is evicted first and its value returned.
    pub(crate) fn insert(&mut self, key: Key, hash: u64, value: V) -> (u32, Option<V>) {
        if self.len == self.limit {
            let victim = self.tail;
            let old = self.slots[victim as usize].value;
            self.unindex(victim);
            self.unlink(victim);
            let slot = &mut self.slots[victim as usize];
            slot.key = key;
            slot.value = value;
            self.index(victim, hash);
            self.push_front(victim);
            return (victim, Some(old));
        }
        self.reserve_index();
        let idx = if self.free != NIL {
            let idx = self.free;
            let slot = &mut self.slots[idx as usize];
            self.free = slot.next;
            slot.key = key;
            slot.value = value;
            idx
        } else {
            if self.slots.len() == self.slots.capacity() {
                let cap = self.slots.capacity();
                // The first time, reserve the whole slab (up to UPFRONT_SLOTS): address space
                // only, as the kernel backs a page when a slot on it is first written, and
                // the slab then never moves. Doubling instead would copy it each time and
                // hold the old and the new copy at once (1.5 times the memory at the peak).
                let upfront = cap == 0
                    && self
                        .slots
                        .try_reserve_exact(self.limit.min(UPFRONT_SLOTS))
                        .is_ok();
                if !upfront {
                    self.slots.reserve_exact(cap.max(8).min(self.limit - cap));
                }
            }
            self.slots.push(Slot {
                key,
                prev: NIL,
                next: NIL,
                value,
            });
            // The slab never outgrows `limit <= MAX_ENTRIES < NIL`.
            (self.slots.len() - 1) as u32
        };
        self.len += 1;
        self.index(idx, hash);
        self.push_front(idx);
        (idx, None)
    }

    /// Removes the entry in slot `idx` and returns its value.
    pub(crate) fn remove(&mut self, idx: u32) -> V {
        self.unindex(idx);
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        slot.next = self.free;
        self.free = idx;
        self.len -= 1;
        slot.value
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[idx as usize];
            s.prev = NIL;
            s.next = old;
        }
        if old == NIL {
            self.tail = idx;
        } else {
            self.slots[old as usize].prev = idx;
        }
        self.head = idx;
    }

    /// Makes room in the index for one more entry, keeping it at most half full.
    fn reserve_index(&mut self) {
        if (self.len + 1) * 2 <= self.buckets.len() {
            return;
        }
        let size = (self.buckets.len() * 2).max(16);
        self.buckets.clear();
        self.buckets.resize(size, NIL);
        let mut s = self.head;
        while s != NIL {
            let hash = self.hash(self.slots[s as usize].key);
            self.index(s, hash);
            s = self.slots[s as usize].next;
        }
    }

    /// Puts slot `idx` into the index (there is room, and its key is not there yet).
    fn index(&mut self, idx: u32, hash: u64) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.buckets[i] != NIL {
            i = (i + 1) & mask;
        }
        self.buckets[i] = idx;
    }

    /// Takes slot `idx` out of the index, shifting later members of its probe run back so
    /// that no tombstones are needed.
    fn unindex(&mut self, idx: u32) {
        let mask = self.mask();
        let mut hole = self.hash(self.slots[idx as usize].key) as usize & mask;
        while self.buckets[hole] != idx {
            hole = (hole + 1) & mask;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.buckets[j];
            if s == NIL {
                break;
            }
            let home = self.hash(self.slots[s as usize].key) as usize & mask;
            // `s` may move back into the hole when the hole lies on its probe path, i.e.
            // cyclically within home..j.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.buckets[hole] = s;
                hole = j;
            }
        }
        self.buckets[hole] = NIL;
    }

    /// The entries from most to least recently used (for tests).
    #[cfg(test)]
    fn keys_by_recency(&self) -> Vec<Key> {
        let mut out = Vec::new();
        let mut s = self.head;
        while s != NIL {
            out.push(self.slots[s as usize].key);
            s = self.slots[s as usize].next;
        }
        out
    }
}

/// Bytes of one slab slot holding a `V` (for the memory notes and tests).
#[cfg(test)]
pub(crate) const fn slot_size<V>() -> usize {
    size_of::<Slot<V>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> Key {
        Key(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n >> 3))
    }

    #[test]
    fn agrees_with_a_naive_lru_under_random_operations() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rng = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for limit in [1usize, 2, 3, 17, 300] {
            let mut table: LruTable<u64> = LruTable::new(limit);
            // Most recently used first.
            let mut model: Vec<(Key, u64)> = Vec::new();
            for step in 0..20_000u64 {
                let k = key(rng() % (limit as u64 * 2 + 3));
                let h = table.hash(k);
                let found = table.find(k, h);
                let pos = model.iter().position(|e| e.0 == k);
                assert_eq!(found.is_some(), pos.is_some());
                match (found, pos, rng() % 3) {
                    (Some(idx), Some(p), 0) => {
                        assert_eq!(table.remove(idx), model.remove(p).1);
                    }
                    (Some(idx), Some(p), _) => {
                        assert_eq!(*table.value(idx), model[p].1);
                        table.touch(idx);
                        *table.value_mut(idx) = step;
                        model.remove(p);
                        model.insert(0, (k, step));
                    }
                    (None, None, _) => {
                        let (_, evicted) = table.insert(k, h, step);
                        let expected = (model.len() == limit).then(|| model.pop().map(|e| e.1));
                        assert_eq!(evicted, expected.flatten());
                        model.insert(0, (k, step));
                    }
                    _ => unreachable!(),
                }
                assert_eq!(table.len(), model.len());
                if step % 997 == 0 {
                    let keys: Vec<Key> = model.iter().map(|e| e.0).collect();
                    assert_eq!(table.keys_by_recency(), keys);
                }
            }
        }
    }

    #[test]
    fn slab_never_grows_past_the_limit() {
        let mut table: LruTable<u8> = LruTable::new(100);
        for n in 0..1000 {
            let k = key(n);
            let h = table.hash(k);
            table.insert(k, h, 0);
        }
        assert_eq!(table.len(), 100);
        assert!(table.slots.capacity() <= 100);
        assert!(table.buckets.len() <= 256);
    }
}
