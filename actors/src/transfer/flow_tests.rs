use super::*;
use uuid::Uuid;

fn frame(offset: u64, len: usize) -> DataFrame {
    let data: Vec<u8> = (0..len).map(|i| (offset as usize + i) as u8).collect();
    DataFrame::parse(DataFrame::build(Uuid::nil(), offset, &data)).unwrap()
}

fn concat(chunks: Vec<Bytes>) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

#[test]
fn data_must_come_in_order() {
    let mut flow = Flow::new(100, 1000, 64, 0);
    assert!(flow.data(&frame(0, 10)).is_ok());
    assert_eq!(
        flow.data(&frame(20, 10)).unwrap_err().code,
        ErrorCode::Conflict,
        "a gap"
    );
    assert_eq!(
        flow.data(&frame(0, 10)).unwrap_err().code,
        ErrorCode::Conflict,
        "a repeat"
    );
    assert!(flow.data(&frame(10, 10)).is_ok());
    assert_eq!(flow.sent(), 20);
}

#[test]
fn data_may_not_pass_the_end_or_the_chunk_size() {
    let mut flow = Flow::new(100, 1000, 64, 0);
    assert_eq!(
        flow.data(&frame(0, 65)).unwrap_err().code,
        ErrorCode::TooLarge
    );
    assert!(flow.data(&frame(0, 64)).is_ok());
    assert_eq!(
        flow.data(&frame(64, 37)).unwrap_err().code,
        ErrorCode::BadRequest
    );
    assert!(flow.data(&frame(64, 36)).is_ok());
}

#[test]
fn the_window_bounds_unacknowledged_bytes() {
    let mut flow = Flow::new(1000, 100, 64, 0);
    assert!(flow.data(&frame(0, 64)).is_ok());
    assert!(flow.data(&frame(64, 36)).is_ok());
    assert_eq!(
        flow.data(&frame(100, 1)).unwrap_err().code,
        ErrorCode::Conflict,
        "101 bytes unacknowledged"
    );
    assert_eq!(flow.ack(50).unwrap().len(), 1);
    assert!(flow.data(&frame(100, 50)).is_ok());
    assert_eq!(
        flow.data(&frame(150, 1)).unwrap_err().code,
        ErrorCode::Conflict
    );
}

#[test]
fn acks_release_exactly_the_acknowledged_bytes_in_order() {
    let mut flow = Flow::new(1000, 1000, 64, 0);
    for offset in (0..200).step_by(50) {
        flow.data(&frame(offset, 50)).unwrap();
    }
    let first = concat(flow.ack(75).unwrap());
    assert_eq!(first, (0..75).map(|i| i as u8).collect::<Vec<_>>());
    assert!(
        flow.ack(60).unwrap().is_empty(),
        "a lower ack changes nothing"
    );
    let second = concat(flow.ack(200).unwrap());
    assert_eq!(second, (75..200).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(flow.acked(), 200);
    assert!(
        flow.ack(201).is_err(),
        "cannot acknowledge what was not sent"
    );
}

#[test]
fn rewind_restarts_at_the_acknowledged_offset() {
    let mut flow = Flow::new(300, 1000, 64, 0);
    flow.data(&frame(0, 60)).unwrap();
    flow.data(&frame(60, 60)).unwrap();
    flow.ack(90).unwrap();
    flow.rewind();
    assert_eq!((flow.sent(), flow.acked()), (90, 90));
    assert_eq!(
        flow.data(&frame(120, 10)).unwrap_err().code,
        ErrorCode::Conflict
    );
    flow.data(&frame(90, 60)).unwrap();
    assert_eq!(
        concat(flow.ack(150).unwrap()),
        (90..150).map(|i| i as u8).collect::<Vec<_>>()
    );
}

#[test]
fn a_resumed_flow_starts_where_it_was_and_empty_files_are_done_at_once() {
    let flow = Flow::new(500, 100, 64, 320);
    assert_eq!((flow.sent(), flow.acked()), (320, 320));
    assert!(Flow::new(0, 100, 64, 0).is_done());
}
