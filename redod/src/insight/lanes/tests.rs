use super::*;

#[test]
fn lowest_free_lane_first() {
    let mut l = Lanes::default();
    assert_eq!((l.take(), l.take(), l.take()), (0, 1, 2));
    l.give_back(1);
    l.give_back(0);
    assert_eq!(l.take(), 0);
    assert_eq!(l.take(), 1);
    assert_eq!(l.take(), 3);
}

#[test]
fn giving_back_twice_or_unknown_lanes_is_harmless() {
    let mut l = Lanes::default();
    let a = l.take();
    l.give_back(a);
    l.give_back(a);
    l.give_back(7);
    assert_eq!(l.take(), 0);
    assert_eq!(l.take(), 1);
}
