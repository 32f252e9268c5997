use super::*;
use crate::messages::{RoomMember, TransferCommand};
use crate::protocol::{DataFrame, NodeTag, Outbound, ServerKind, SessionId, User};
use std::sync::Arc;

fn session() -> SessionId {
    SessionId::new_random(NodeTag::of("node-b"))
}

#[test]
fn a_chunk_rides_in_the_body_uncopied() {
    let chunk = Bytes::from(vec![7u8; 256 * 1024]);
    let envelope = Envelope::Transfer {
        id: Uuid::new_v4(),
        command: TransferCommand::Data {
            session: session(),
            user: UserId(Uuid::new_v4()),
            frame: DataFrame {
                transfer: Uuid::new_v4(),
                offset: 42,
                frame: chunk.clone(),
            },
        },
        hops: 0,
    };
    let (header, body) = envelope.encode().expect("encode");
    assert!(
        header.len() < 512,
        "the header stays small: {}",
        header.len()
    );
    assert_eq!(
        body.as_ptr(),
        chunk.as_ptr(),
        "one payload is the body itself"
    );
    let Envelope::Transfer {
        command: TransferCommand::Data {
            frame, session: s, ..
        },
        ..
    } = Envelope::decode(&header, body.clone()).expect("decode")
    else {
        panic!("not a data command");
    };
    assert_eq!(frame.offset, 42);
    assert_eq!(frame.frame, chunk);
    assert_eq!(
        frame.frame.as_ptr(),
        body.as_ptr(),
        "decoding slices the body"
    );
    assert_eq!(s.node, NodeTag::of("node-b"));
}

#[test]
fn a_room_command_and_a_delivery_round_trip() {
    let member = RoomMember {
        session: session(),
        user: User {
            id: UserId(Uuid::new_v4()),
            name: "ann".into(),
        },
    };
    let say = Envelope::Room {
        room: RoomName::parse("lobby").expect("room"),
        command: RoomCommand::Say {
            member: member.clone(),
            text: "hello \"there\"".into(),
            file: None,
            re: Some(Arc::from("r1")),
        },
        hops: 1,
    };
    let (header, body) = say.encode().expect("encode");
    let Envelope::Room {
        command: RoomCommand::Say {
            text, member: m, ..
        },
        hops,
        ..
    } = Envelope::decode(&header, body).expect("decode")
    else {
        panic!("not a say");
    };
    assert_eq!((text.as_ref(), hops), ("hello \"there\"", 1));
    assert_eq!(m.session, member.session);

    let frames = Envelope::Deliver(Delivery {
        sessions: vec![session(), session()],
        out: Outbound::Binary(Bytes::from_static(b"\x01chunk")),
        room_seq: None,
        personal: None,
    });
    let (header, body) = frames.encode().expect("encode");
    let Envelope::Deliver(delivery) = Envelope::decode(&header, body).expect("decode") else {
        panic!("not a delivery");
    };
    assert_eq!(delivery.sessions.len(), 2);
    assert!(matches!(delivery.out, Outbound::Binary(b) if b.as_ref() == b"\x01chunk"));
    let text = Envelope::Deliver(Delivery {
        sessions: vec![session()],
        out: Outbound::Frame {
            kind: ServerKind::Message,
            json: "{\"type\":\"message\"}".into(),
        },
        room_seq: Some((RoomName::parse("lobby").expect("room"), 9)),
        personal: None,
    });
    let (header, body) = text.encode().expect("encode");
    assert!(body.is_empty());
    let Envelope::Deliver(delivery) = Envelope::decode(&header, body).expect("decode") else {
        panic!("not a delivery");
    };
    assert_eq!(delivery.room_seq.map(|(_, seq)| seq), Some(9));
}

#[test]
fn a_payload_pointing_past_the_body_is_refused() {
    let header = br#"{"Deliver":{"sessions":[],"out":{"Binary":[0,10]},"room_seq":null}}"#;
    assert!(Envelope::decode(header, Bytes::from_static(b"short")).is_err());
}
