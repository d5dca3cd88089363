//! Creating files and processes with the *requester's* umask.
//!
//! The umask is per process, and the daemon serves many clients at once. Files the daemon
//! creates for a request (`.redo/`, temps that become targets, state files) and the `.do`
//! processes it spawns must get that request's umask, as they would under goredo. Setting it
//! per operation from several threads would race, and spawning through a `pre_exec` hook to set
//! it in the child forces `fork` instead of the much cheaper `posix_spawn`.
//!
//! The gate lets any number of operations with the *same* umask run at once (the usual case:
//! every client of a project has the same umask), and makes an operation with a different one
//! wait until those are done. Holders keep it only around a few system calls, never across an
//! `.await`.

use std::sync::{Condvar, Mutex};

pub struct UmaskGate {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// The process umask now.
    mask: u32,
    /// Operations holding it at `mask`.
    holders: usize,
    /// Operations waiting for another umask: only then is there anyone to wake (a
    /// notification is a system call even with nobody waiting).
    waiting: usize,
}

pub struct UmaskGuard<'a> {
    gate: &'a UmaskGate,
}

impl UmaskGate {
    /// The process umask is set to `initial` here and only changed through the gate after.
    pub fn new(initial: u32) -> UmaskGate {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(initial));
        UmaskGate {
            state: Mutex::new(State {
                mask: initial,
                holders: 0,
                waiting: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Holds the process umask at `mask` until the guard is dropped.
    pub fn enter(&self, mask: u32) -> UmaskGuard<'_> {
        let mask = mask & 0o777;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.holders > 0 && st.mask != mask {
            st.waiting += 1;
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting -= 1;
        }
        if st.mask != mask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
            st.mask = mask;
        }
        st.holders += 1;
        UmaskGuard { gate: self }
    }

    /// Runs `f` with the process umask at `mask`.
    pub fn with<T>(&self, mask: u32, f: impl FnOnce() -> T) -> T {
        let _g = self.enter(mask);
        f()
    }
}

impl Drop for UmaskGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.gate.state.lock().unwrap_or_else(|p| p.into_inner());
        st.holders -= 1;
        if st.holders == 0 && st.waiting > 0 {
            self.gate.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests;
