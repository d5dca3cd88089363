use super::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdStream;

fn pair() -> (Conn, StdStream) {
    let (ours, theirs) = StdStream::pair().unwrap();
    (Conn::Plain(ours), theirs)
}

#[tokio::test]
async fn what_is_there_is_read_without_registering() {
    let (mut conn, mut client) = pair();
    client.write_all(b"hello and request").unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(conn.read_buf(&mut buf).await.unwrap(), 17);
    assert_eq!(&buf[..], b"hello and request");
    assert!(matches!(conn, Conn::Plain(_)));
    conn.write_all(b"answer").await.unwrap();
    assert!(matches!(conn, Conn::Plain(_)));
    drop(conn);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer");
}

#[tokio::test]
async fn a_read_that_waits_registers_and_gets_what_comes_later() {
    let (mut conn, mut client) = pair();
    let later = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        client.write_all(b"late").unwrap();
        client
    });
    let mut buf = BytesMut::from(&b"early "[..]);
    assert_eq!(conn.read_buf(&mut buf).await.unwrap(), 4);
    assert_eq!(&buf[..], b"early late");
    assert!(matches!(conn, Conn::Async(_)));
    drop(later.join().unwrap());
    assert_eq!(conn.read_buf(&mut buf).await.unwrap(), 0, "end of stream");
}

#[tokio::test]
async fn an_answer_larger_than_the_socket_buffer_is_written_whole() {
    let (mut conn, mut client) = pair();
    let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
    let reader = std::thread::spawn(move || {
        // Not reading yet: the first sends fill the socket's buffer.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    });
    conn.write_all(&big).await.unwrap();
    assert!(
        matches!(conn, Conn::Async(_)),
        "a full socket buffer waits through the runtime"
    );
    drop(conn);
    assert!(reader.join().unwrap() == big);
}

#[tokio::test]
async fn the_peer_is_this_process() {
    let (conn, _client) = pair();
    let (uid, pid) = conn.peer().unwrap();
    assert_eq!(uid, nix::unistd::geteuid().as_raw());
    assert_eq!(pid, Some(std::process::id() as i32));
}
