use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::of(pairs)
}

#[test]
fn every_part_changes_the_key() {
    let e = env(&[("CC", "gcc"), ("HOME", "/root")]);
    let names = vec!["CC".to_string()];
    let base = KeyInput {
        target: b"a.o",
        do_file: b"default.o.do",
        do_hash: [1; 32],
        env: &e,
        env_names: &names,
    };
    let k = base.key();
    assert_eq!(k, base.clone().key(), "deterministic");
    assert_ne!(
        k,
        KeyInput {
            target: b"b.o",
            ..base.clone()
        }
        .key()
    );
    assert_ne!(
        k,
        KeyInput {
            do_file: b"a.o.do",
            ..base.clone()
        }
        .key()
    );
    assert_ne!(
        k,
        KeyInput {
            do_hash: [2; 32],
            ..base.clone()
        }
        .key()
    );
    let clang = env(&[("CC", "clang"), ("HOME", "/root")]);
    assert_ne!(
        k,
        KeyInput {
            env: &clang,
            ..base.clone()
        }
        .key()
    );
    let unset = env(&[]);
    let empty = env(&[("CC", "")]);
    let k_unset = KeyInput {
        env: &unset,
        ..base.clone()
    }
    .key();
    assert_ne!(
        k_unset,
        KeyInput {
            env: &empty,
            ..base.clone()
        }
        .key()
    );
    // Variables not named do not matter.
    let other_home = env(&[("CC", "gcc"), ("HOME", "/home/x")]);
    assert_eq!(
        k,
        KeyInput {
            env: &other_home,
            ..base.clone()
        }
        .key()
    );
    // Length prefixes: moving a byte between fields changes the key.
    assert_ne!(
        KeyInput {
            target: b"ab",
            do_file: b"c",
            ..base.clone()
        }
        .key(),
        KeyInput {
            target: b"a",
            do_file: b"bc",
            ..base.clone()
        }
        .key()
    );
    assert_eq!(k.hex().len(), 64);
}
