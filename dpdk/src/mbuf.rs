//! Packet buffers: the mbuf mempool and owned mbufs with zero-copy access to the frame.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::{strerror, DpdkError};

/// Bytes of frame data an mbuf of [`Mempool::new`] holds (DPDK's default data room,
/// 2048, after 128 bytes of headroom): a standard Ethernet frame fits in one segment.
pub const DATA_ROOM: u16 = sys::RTE_MBUF_DEFAULT_DATAROOM as u16;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). Shared by every core and port
/// of a run; its per-lcore caches make alloc and free lock-free on EAL lcores.
#[derive(Debug)]
pub struct Mempool<'e> {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    _eal: PhantomData<&'e Eal>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe (ring_mp_mc); the pointer
// stays valid until Drop, which needs `&mut self` (no other reference).
unsafe impl Send for Mempool<'_> {}
unsafe impl Sync for Mempool<'_> {}

impl<'e> Mempool<'e> {
    /// `mbufs` mbufs of [`DATA_ROOM`] bytes with a per-lcore cache of `cache` (at most
    /// 512; 256 is DPDK's usual), on the caller's NUMA socket. Size it for every RX and
    /// TX descriptor of every queue plus the bursts in flight, or receive stalls.
    pub fn new(
        _eal: &'e Eal,
        name: &str,
        mbufs: u32,
        cache: u32,
    ) -> Result<Mempool<'e>, DpdkError> {
        if name.is_empty() || name.len() > 25 || !name.is_ascii() {
            return Err(DpdkError::MempoolName { name: name.into() });
        }
        let cname = CString::new(name).map_err(|_| DpdkError::MempoolName { name: name.into() })?;
        let cache = cache.min(sys::RTE_MEMPOOL_CACHE_MAX_SIZE);
        // SAFETY: EAL is initialised (the borrow of `Eal`); the name is a C string.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                mbufs,
                cache,
                0,
                DATA_ROOM + sys::RTE_PKTMBUF_HEADROOM as u16,
                sys::rte_socket_id() as i32,
            )
        };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Mempool {
                ptr,
                name: name.into(),
                _eal: PhantomData,
            }),
            None => {
                // SAFETY: this thread's rte_errno.
                let code = unsafe { sys::maestro_errno() };
                Err(DpdkError::Mempool {
                    name: name.into(),
                    mbufs,
                    code,
                    reason: strerror(code),
                })
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// A fresh, empty mbuf, or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf<'_>> {
        // SAFETY: a valid mempool of packet mbufs.
        let m = unsafe { sys::maestro_pktmbuf_alloc(self.as_ptr()) };
        NonNull::new(m).map(|ptr| Mbuf {
            ptr,
            _pool: PhantomData,
        })
    }

    /// Mbufs free in the pool (cached ones included).
    pub fn available(&self) -> u32 {
        // SAFETY: a valid mempool.
        unsafe { sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// Mbufs taken from the pool and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: a valid mempool.
        unsafe { sys::rte_mempool_in_use_count(self.as_ptr()) }
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        // SAFETY: no mbuf outlives the pool (they borrow it) and ports hold an `Arc` of
        // it, so nothing refers to it any more.
        unsafe { sys::rte_mempool_free(self.as_ptr()) };
    }
}

/// One packet buffer, owned: freed on drop, or handed to the NIC by a transmit.
/// Single-segment access is zero-copy ([`Mbuf::data`]); segmented packets (jumbo frames
/// from a scattering PMD) are read with [`Mbuf::copy_to`].
#[derive(Debug)]
#[repr(transparent)]
pub struct Mbuf<'p> {
    ptr: NonNull<sys::rte_mbuf>,
    _pool: PhantomData<&'p ()>,
}

// SAFETY: an mbuf is owned by one holder at a time; DPDK lets any thread free it.
unsafe impl Send for Mbuf<'_> {}

impl<'p> Mbuf<'p> {
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: a valid mbuf we own.
        unsafe { self.ptr.as_ref() }
    }

    /// Total packet length over every segment.
    pub fn len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Segments in the chain.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The first segment's bytes, in place (`rte_pktmbuf_mtod`): the whole frame when
    /// [`Mbuf::segments`] is 1.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off starts data_len initialised bytes inside the
        // mbuf's buffer, which lives as long as the mbuf.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The first segment's bytes, writable in place.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and we own the mbuf exclusively (refcnt 1 for mbufs
        // from a pool or a receive burst).
        unsafe {
            let m = self.ptr.as_mut();
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Appends the whole packet (every segment) to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        if self.segments() <= 1 {
            out.extend_from_slice(self.data());
            return;
        }
        let len = self.len();
        let start = out.len();
        out.resize(start + len, 0);
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        // SAFETY: rte_pktmbuf_read copies `len` bytes into our buffer (or returns a
        // pointer into the mbuf when they are contiguous, which we then copy).
        unsafe {
            let dst = out.as_mut_ptr().add(start);
            let p = sys::maestro_pktmbuf_read(self.ptr.as_ptr(), 0, len32, dst.cast());
            if p.is_null() {
                out.truncate(start);
            } else if p.cast::<u8>() != dst.cast_const() {
                std::ptr::copy_nonoverlapping(p.cast::<u8>(), dst, len);
            }
        }
    }

    /// Bytes the first segment can hold from its data start (what [`Mbuf::set_data`]
    /// accepts).
    pub fn capacity(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off))
    }

    /// Replaces the packet with `bytes` in place. Fails (`false`, mbuf unchanged) when
    /// the mbuf is segmented or `bytes` exceed [`Mbuf::capacity`].
    pub fn set_data(&mut self, bytes: &[u8]) -> bool {
        if self.segments() > 1 || bytes.len() > self.capacity() {
            return false;
        }
        let Ok(len) = u16::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: the buffer holds `capacity()` bytes from buf_addr + data_off.
        unsafe {
            let m = self.ptr.as_mut();
            let dst = m.buf_addr.cast::<u8>().add(usize::from(m.data_off));
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            m.data_len = len;
            m.pkt_len = u32::from(len);
        }
        true
    }

    /// The DPDK port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The NIC's RSS hash, when the PMD delivered one (`RTE_MBUF_F_RX_RSS_HASH`).
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        // SAFETY: a constant of the shim; `hash.rss` is plain data of the union.
        unsafe {
            (m.ol_flags & sys::maestro_mbuf_f_rx_rss_hash != 0)
                .then_some(m.__bindgen_anon_2.hash.rss)
        }
    }

    /// The receive timestamp in the dynamic field at `offset` when `flag` is set.
    #[inline]
    pub(crate) fn dyn_timestamp(&self, offset: usize, flag: u64) -> Option<u64> {
        let m = self.raw();
        if m.ol_flags & flag == 0 {
            return None;
        }
        // SAFETY: DPDK registered an 8-byte field at `offset` inside every mbuf
        // (rte_mbuf_dyn_rx_timestamp_register), and the flag says it was written.
        Some(unsafe {
            self.ptr
                .as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<u64>()
                .read_unaligned()
        })
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; this returns it (and its segments) to the pool.
        unsafe { sys::maestro_pktmbuf_free(self.ptr.as_ptr()) };
    }
}
