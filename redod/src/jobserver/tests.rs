use super::*;
use std::time::Duration;

async fn blocks(t: &Tokens) -> bool {
    tokio::time::timeout(Duration::from_millis(30), t.acquire())
        .await
        .is_err()
}

#[test]
fn makeflags() {
    let js = ChildJobserver {
        read: 7,
        write: 8,
        fifo: Some(Path::new("/run/js")),
    };
    let (mf, jsfd, inherit) = advertise(
        b"k -j4 --jobserver-auth=3,4 FOO=1",
        &js,
        Some(2),
        MakeStyle::Gmake,
    );
    assert_eq!(
        String::from_utf8(mf.unwrap()).unwrap(),
        "k FOO=1 -j2 --jobserver-auth=7,8"
    );
    assert_eq!(jsfd.as_deref(), Some(&b"7,8"[..]));
    assert!(inherit);
    let (mf, jsfd, inherit) = advertise(b"", &js, Some(3), MakeStyle::Fifo);
    assert_eq!(
        String::from_utf8(mf.unwrap()).unwrap(),
        "-j3 --jobserver-auth=fifo:/run/js"
    );
    assert!(jsfd.is_none() && !inherit);
    let (mf, ..) = advertise(b"-j9 --jobserver-fds=3,4", &js, None, MakeStyle::Bmake);
    assert_eq!(String::from_utf8(mf.unwrap()).unwrap(), "-j9 -J 7,8");
    assert_eq!(without_jobserver(b"-k -j4 --jobserver-auth=3,4"), b"-k -j4");
    let (mf, jsfd, inherit) = advertise(b"-k", &js, Some(2), MakeStyle::None);
    assert!(mf.is_none() && jsfd.is_some() && inherit);
    // make's pipe pool has no path: the fifo style falls back to descriptors.
    let pipe_only = ChildJobserver {
        read: 7,
        write: 8,
        fifo: None,
    };
    let (mf, _, inherit) = advertise(b"", &pipe_only, None, MakeStyle::Fifo);
    assert_eq!(
        String::from_utf8(mf.unwrap()).unwrap(),
        "--jobserver-auth=7,8"
    );
    assert!(inherit);
}

#[tokio::test]
async fn in_memory_and_unlimited() {
    let t = Tokens::new(1, None);
    let a = t.acquire().await;
    assert!(blocks(&t).await, "second token must wait");
    assert_eq!(t.held(), 1);
    drop(a);
    let _b = t.acquire().await;
    let u = Tokens::new(0, None);
    let _x = u.acquire().await;
    let _y = u.acquire().await;
    assert_eq!(u.limit(), Some(0));
    assert!(u.for_children().is_none());
}

#[tokio::test]
async fn fifo_pool_is_shared_with_children_and_removed() {
    let dir = std::env::temp_dir().join(format!("redod-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = Tokens::new(2, Some(&dir));
    let path = t.for_children().unwrap().fifo.unwrap().to_path_buf();
    assert!(path.exists());
    let a = t.acquire().await;
    // A "child" takes the other token through its own description: the pool is empty.
    let fd = t.for_children().unwrap().read;
    let mut byte = [0u8; 1];
    assert_eq!(nix::unistd::read(unsafe_borrow(fd), &mut byte).unwrap(), 1);
    assert_eq!(byte[0], b'+');
    assert!(blocks(&t).await);
    // The child gives it back; we can take it.
    nix::unistd::write(unsafe_borrow(t.for_children().unwrap().write), &byte).unwrap();
    let b = t.acquire().await;
    drop((a, b));
    assert_eq!(t.held(), 0);
    drop(t);
    assert!(!path.exists(), "the FIFO is removed with its pool");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[allow(unsafe_code)]
fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the pool owning the descriptor outlives each use in this test.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[tokio::test]
async fn make_pool_has_one_implicit_token_plus_the_pipe() {
    let dir = std::env::temp_dir().join(format!("redod-mk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("make-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // "make -j2": one token in the FIFO, one implicit in the client.
    let holder = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    nix::unistd::write(&holder, b"+").unwrap();
    let js = redo_proto::MakeJobserver::Fifo(redo_proto::msg::ByteBuf::from(
        fifo.as_os_str().as_encoded_bytes().to_vec(),
    ));
    let t = Tokens::from_make(&js, None).unwrap();
    assert_eq!(t.limit(), None);
    let a = t.acquire().await;
    let b = t.acquire().await;
    assert!(blocks(&t).await, "make -j2 allows two jobs");
    drop(a);
    let _c = t.acquire().await;
    drop(b);
    drop(t);
    assert!(fifo.exists(), "make's FIFO is make's to remove");
    std::fs::remove_dir_all(&dir).unwrap();
}
