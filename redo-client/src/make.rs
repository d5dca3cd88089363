//! A `make -jN` that started this client: its jobserver, from `MAKEFLAGS`.
//!
//! GNU make advertises its token pool as `--jobserver-auth=R,W` (two inherited pipe
//! descriptors; `--jobserver-fds` before 4.2) or, from 4.4, `--jobserver-auth=fifo:PATH`. A
//! top-level client hands that to the daemon so the whole build draws from make's tokens. Make
//! passes the pipe descriptors only to recipes it knows to be recursive (`+cmd` or `$(MAKE)`);
//! when they are not open here, make would say "jobserver unavailable" and so the build simply
//! uses its own pool.

use redo_proto::MakeJobserver;
use redo_proto::msg::ByteBuf;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

/// The jobserver named by a `MAKEFLAGS` value (the last one wins, as in make).
pub fn parse(makeflags: &[u8]) -> Option<MakeJobserver> {
    let mut found = None;
    for word in makeflags.split(|b| b.is_ascii_whitespace()) {
        let value = word
            .strip_prefix(b"--jobserver-auth=")
            .or_else(|| word.strip_prefix(b"--jobserver-fds="));
        let Some(value) = value else { continue };
        if let Some(path) = value.strip_prefix(b"fifo:") {
            found = Some(MakeJobserver::Fifo(ByteBuf::from(path.to_vec())));
            continue;
        }
        let text = std::str::from_utf8(value).ok();
        let fds = text
            .and_then(|t| t.split_once(','))
            .and_then(|(r, w)| Some((r.parse::<i32>().ok()?, w.parse::<i32>().ok()?)));
        found = fds
            .filter(|(r, w)| *r >= 0 && *w >= 0)
            .map(|(read, write)| MakeJobserver::Pipe { read, write });
    }
    found
}

fn is_open(fd: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: the descriptor is only borrowed for the duration of one fcntl(F_GETFD), which
    // cannot affect it; a closed number yields EBADF.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok()
}

/// make's jobserver for this process, if `MAKEFLAGS` names one that is usable here.
pub fn from_env() -> Option<MakeJobserver> {
    let flags = std::env::var_os("MAKEFLAGS")?;
    match parse(flags.as_bytes())? {
        MakeJobserver::Pipe { read, write } if !(is_open(read) && is_open(write)) => None,
        js => Some(js),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse(b" -j4 --jobserver-auth=3,4"),
            Some(MakeJobserver::Pipe { read: 3, write: 4 })
        );
        assert_eq!(
            parse(b"-j --jobserver-fds=5,6"),
            Some(MakeJobserver::Pipe { read: 5, write: 6 })
        );
        assert_eq!(
            parse(b"-j8 --jobserver-auth=fifo:/tmp/GMfifo1"),
            Some(MakeJobserver::Fifo(ByteBuf::from(b"/tmp/GMfifo1".to_vec())))
        );
        assert_eq!(
            parse(b"--jobserver-auth=3,4 --jobserver-auth=fifo:/f"),
            Some(MakeJobserver::Fifo(ByteBuf::from(b"/f".to_vec())))
        );
        assert_eq!(parse(b"-j4"), None);
        assert_eq!(parse(b"--jobserver-auth=-2,-2"), None);
        assert_eq!(parse(b"--jobserver-auth=x"), None);
    }
}
