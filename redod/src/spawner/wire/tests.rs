//! The spawner's messages: round trips, and damage is an error, never a panic.

use super::*;

fn sample() -> Spawn {
    Spawn {
        id: 7,
        umask: 0o022,
        keep: vec![3, 4],
        program: "/bin/sh".into(),
        args: vec!["-e".into(), OsString::from_vec(b"odd\xffname.do".to_vec())],
        env: vec![("PATH".into(), "/bin".into()), ("E".into(), "".into())],
        cwd: "/p/sub".into(),
    }
}

#[test]
fn round_trips() {
    let s = sample();
    assert_eq!(Spawn::decode(&s.encode()).unwrap(), s);
    for r in [
        Reply::Started { id: 1, pid: 42 },
        Reply::Failed { id: 2, errno: 8 },
        Reply::Exited {
            pid: 42,
            status: 256,
        },
    ] {
        assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
    }
}

#[test]
fn damage_is_an_error_not_a_panic() {
    let b = sample().encode();
    for n in 0..b.len() {
        assert!(Spawn::decode(&b[..n]).is_err(), "truncated at {n}");
    }
    let mut long = b.clone();
    long.push(0);
    assert!(Spawn::decode(&long).is_err());
    // A count no message could hold.
    let mut huge = b.clone();
    huge[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Spawn::decode(&huge).is_err());
    assert!(Reply::decode(&[9, 0, 0]).is_err());
    assert!(Reply::decode(&[]).is_err());
}
