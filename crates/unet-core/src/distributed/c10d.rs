//! Safe handles over the C ABI of `csrc/c10d.cpp`: a TCPStore and a c10d process group.
//!
//! Each call returns libtorch's message as a `String` on failure; [`super::Group`] turns it
//! into an [`crate::Error::Distributed`] naming the rank and the operation.

use std::time::Duration;

use tch::Tensor;

/// Result of a raw c10d call: the message c10d reported.
pub type CallResult<T> = std::result::Result<T, String>;

#[cfg(unet_c10d)]
mod ffi {
    use std::os::raw::{c_char, c_int, c_void};

    extern "C" {
        pub fn unet_c10d_free_error(err: *mut c_char);
        pub fn unet_c10d_has_nccl() -> c_int;
        pub fn unet_c10d_store_new(
            host: *const c_char,
            port: u16,
            world_size: c_int,
            is_server: c_int,
            timeout_ms: i64,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn unet_c10d_store_free(store: *mut c_void);
        pub fn unet_c10d_store_set(
            store: *mut c_void,
            key: *const c_char,
            data: *const u8,
            len: usize,
        ) -> *mut c_char;
        pub fn unet_c10d_store_get(
            store: *mut c_void,
            key: *const c_char,
            timeout_ms: i64,
            data: *mut *mut u8,
            len: *mut usize,
        ) -> *mut c_char;
        pub fn unet_c10d_free_bytes(data: *mut u8);
        pub fn unet_c10d_store_add(
            store: *mut c_void,
            key: *const c_char,
            delta: i64,
            out: *mut i64,
        ) -> *mut c_char;
        pub fn unet_c10d_gloo_new(
            store: *mut c_void,
            prefix: *const c_char,
            rank: c_int,
            size: c_int,
            timeout_ms: i64,
            hostname: *const c_char,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn unet_c10d_nccl_new(
            store: *mut c_void,
            prefix: *const c_char,
            rank: c_int,
            size: c_int,
            timeout_ms: i64,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn unet_c10d_group_free(group: *mut c_void);
        pub fn unet_c10d_all_reduce_sum(
            group: *mut c_void,
            tensor: *mut c_void,
            timeout_ms: i64,
        ) -> *mut c_char;
        pub fn unet_c10d_broadcast(
            group: *mut c_void,
            tensor: *mut c_void,
            root: c_int,
            timeout_ms: i64,
        ) -> *mut c_char;
        pub fn unet_c10d_barrier(group: *mut c_void, timeout_ms: i64) -> *mut c_char;
    }
}

/// Whether this build has the c10d shim (Gloo headers were found at build time).
pub const AVAILABLE: bool = cfg!(unet_c10d);

/// Whether this build has ProcessGroupNCCL.
pub fn has_nccl() -> bool {
    #[cfg(unet_c10d)]
    // SAFETY: a constant query with no arguments.
    unsafe {
        ffi::unet_c10d_has_nccl() != 0
    }
    #[cfg(not(unet_c10d))]
    false
}

#[cfg(not(unet_c10d))]
fn unavailable<T>() -> CallResult<T> {
    Err("this build of unet-core has no c10d: libgloo-dev (Gloo headers) was missing when it \
         was compiled; install it (`apt-get install libgloo-dev`) or set GLOO_INCLUDE_DIR and \
         rebuild"
        .into())
}

#[cfg(unet_c10d)]
fn check(err: *mut std::os::raw::c_char) -> CallResult<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated strdup'd string, freed right after copying.
    let msg = unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().trim().to_string();
    unsafe { ffi::unet_c10d_free_error(err) };
    Err(msg)
}

#[cfg(unet_c10d)]
fn cstr(s: &str) -> CallResult<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"))
}

fn millis(d: Duration) -> i64 {
    d.as_millis().clamp(1, i64::MAX as u128) as i64
}

/// A c10d TCPStore: the key-value rendezvous every rank connects to.
#[derive(Debug)]
pub struct Store {
    #[cfg_attr(not(unet_c10d), allow(dead_code))]
    ptr: *mut std::ffi::c_void,
}

// SAFETY: c10d's TCPStore serialises its operations behind an internal mutex.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Store {
    /// Connects to (or, with `server`, hosts) the store at `host:port`. A server with
    /// `wait_for > 0` returns once that many clients (itself included) have connected, and
    /// fails after `timeout` otherwise.
    pub fn connect(
        host: &str,
        port: u16,
        wait_for: usize,
        server: bool,
        timeout: Duration,
    ) -> CallResult<Self> {
        #[cfg(unet_c10d)]
        {
            let h = cstr(host)?;
            let mut out = std::ptr::null_mut();
            // SAFETY: valid C strings; `out` receives a heap handle on success.
            check(unsafe {
                ffi::unet_c10d_store_new(
                    h.as_ptr(),
                    port,
                    wait_for as i32,
                    server as i32,
                    millis(timeout),
                    &mut out,
                )
            })?;
            Ok(Self { ptr: out })
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (host, port, wait_for, server, timeout);
            unavailable()
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> CallResult<()> {
        #[cfg(unet_c10d)]
        {
            let k = cstr(key)?;
            // SAFETY: live handle, valid key, `value` outlives the call (the shim copies it).
            check(unsafe {
                ffi::unet_c10d_store_set(self.ptr, k.as_ptr(), value.as_ptr(), value.len())
            })
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (key, value);
            unavailable()
        }
    }

    /// Waits up to `timeout` for `key` and returns its value.
    pub fn get(&self, key: &str, timeout: Duration) -> CallResult<Vec<u8>> {
        #[cfg(unet_c10d)]
        {
            let k = cstr(key)?;
            let (mut data, mut len) = (std::ptr::null_mut(), 0usize);
            // SAFETY: live handle; on success `data` holds `len` malloc'd bytes, copied and freed.
            check(unsafe {
                ffi::unet_c10d_store_get(self.ptr, k.as_ptr(), millis(timeout), &mut data, &mut len)
            })?;
            let v = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
            unsafe { ffi::unet_c10d_free_bytes(data) };
            Ok(v)
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (key, timeout);
            unavailable()
        }
    }

    /// Adds `delta` to the integer at `key` (created at 0) and returns the new value.
    pub fn add(&self, key: &str, delta: i64) -> CallResult<i64> {
        #[cfg(unet_c10d)]
        {
            let k = cstr(key)?;
            let mut v = 0i64;
            // SAFETY: live handle, valid key, `v` receives the result.
            check(unsafe { ffi::unet_c10d_store_add(self.ptr, k.as_ptr(), delta, &mut v) })?;
            Ok(v)
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (key, delta);
            unavailable()
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        #[cfg(unet_c10d)]
        // SAFETY: the handle came from unet_c10d_store_new and is freed once.
        unsafe {
            ffi::unet_c10d_store_free(self.ptr)
        }
    }
}

/// Collective backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo over TCP: CPU tensors.
    Gloo,
    /// NCCL: CUDA tensors, one GPU per rank (builds with the `nccl` feature).
    Nccl,
}

/// A c10d process group (`ProcessGroupGloo` or `ProcessGroupNCCL`).
#[derive(Debug)]
pub struct ProcessGroup {
    #[cfg_attr(not(unet_c10d), allow(dead_code))]
    ptr: *mut std::ffi::c_void,
}

// SAFETY: c10d backends enqueue collectives under their own locks; the handle is only an
// intrusive pointer.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl ProcessGroup {
    /// Creates the group of `size` ranks over `store` (keys under `prefix`). For Gloo,
    /// `bind` is the address its TCP transport uses (None: `$GLOO_SOCKET_IFNAME`, else this
    /// machine's hostname). `timeout` bounds every collective.
    pub fn new(
        backend: Backend,
        store: &Store,
        prefix: &str,
        rank: usize,
        size: usize,
        timeout: Duration,
        bind: Option<&str>,
    ) -> CallResult<Self> {
        #[cfg(unet_c10d)]
        {
            let p = cstr(prefix)?;
            let mut out = std::ptr::null_mut();
            let (r, s, t) = (rank as i32, size as i32, millis(timeout));
            // SAFETY: live store handle, valid C strings; `out` receives a heap handle.
            check(unsafe {
                match backend {
                    Backend::Gloo => {
                        let b = cstr(bind.unwrap_or(""))?;
                        ffi::unet_c10d_gloo_new(
                            store.ptr,
                            p.as_ptr(),
                            r,
                            s,
                            t,
                            b.as_ptr(),
                            &mut out,
                        )
                    }
                    Backend::Nccl => {
                        ffi::unet_c10d_nccl_new(store.ptr, p.as_ptr(), r, s, t, &mut out)
                    }
                }
            })?;
            Ok(Self { ptr: out })
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (backend, store, prefix, rank, size, timeout, bind);
            unavailable()
        }
    }

    /// Sums `t` over all ranks, in place.
    pub fn all_reduce_sum(&self, t: &mut Tensor, timeout: Duration) -> CallResult<()> {
        #[cfg(unet_c10d)]
        // SAFETY: tch's tensor pointer is an `at::Tensor*`; the shim shares its storage.
        unsafe {
            check(ffi::unet_c10d_all_reduce_sum(self.ptr, t.as_mut_ptr().cast(), millis(timeout)))
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (t, timeout);
            unavailable()
        }
    }

    /// Copies `t` of rank `root` into `t` of every rank.
    pub fn broadcast(&self, t: &mut Tensor, root: usize, timeout: Duration) -> CallResult<()> {
        #[cfg(unet_c10d)]
        // SAFETY: as in `all_reduce_sum`.
        unsafe {
            check(ffi::unet_c10d_broadcast(
                self.ptr,
                t.as_mut_ptr().cast(),
                root as i32,
                millis(timeout),
            ))
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = (t, root, timeout);
            unavailable()
        }
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self, timeout: Duration) -> CallResult<()> {
        #[cfg(unet_c10d)]
        // SAFETY: live handle.
        unsafe {
            check(ffi::unet_c10d_barrier(self.ptr, millis(timeout)))
        }
        #[cfg(not(unet_c10d))]
        {
            let _ = timeout;
            unavailable()
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        #[cfg(unet_c10d)]
        // SAFETY: the handle came from the shim and is freed once.
        unsafe {
            ffi::unet_c10d_group_free(self.ptr)
        }
    }
}
