use super::*;

fn key(n: u8) -> ActionKey {
    ActionKey([n; 32])
}

#[tokio::test]
async fn an_answer_is_taken_once_by_its_key() {
    let p = Prefetches::default();
    let now = Instant::now();
    let tx = p.ask(key(1), now).expect("first ask");
    assert!(p.ask(key(1), now).is_none(), "one lookup per key at a time");
    assert!(p.take(&key(2), now).is_none());
    tx.send(Ok(None)).expect("receiver kept");
    let rx = p.take(&key(1), now).expect("pending");
    assert!(matches!(rx.await, Ok(Ok(None))));
    assert!(p.take(&key(1), now).is_none(), "taken");
    assert!(p.ask(key(1), now).is_some(), "can be asked again");
}

#[test]
fn old_answers_are_not_used() {
    let p = Prefetches::default();
    let then = Instant::now();
    let _tx = p.ask(key(1), then);
    assert!(
        p.take(&key(1), then + FRESH + Duration::from_millis(1))
            .is_none()
    );
    assert!(p.take(&key(1), then).is_none(), "dropped when found stale");
}

#[test]
fn at_most_kept_are_pending_the_oldest_goes() {
    let p = Prefetches::default();
    let now = Instant::now();
    let senders: Vec<_> = (0..=KEPT as u8).map(|n| p.ask(key(n), now)).collect();
    assert!(senders.iter().all(Option::is_some));
    assert!(p.take(&key(0), now).is_none(), "the oldest was dropped");
    for n in 1..=KEPT as u8 {
        assert!(p.take(&key(n), now).is_some(), "key {n} kept");
    }
}
