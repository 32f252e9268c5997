use super::*;

fn alice() -> User {
    User {
        id: UserId::parse("4f1c0a4e-8d1c-4a1e-9b7e-2b0c8f8e8a11")
            .unwrap_or_else(|_| UserId::new_random()),
        name: "alice".into(),
    }
}

#[test]
fn message_frames_match_the_protocol() {
    let frame = MessageFrame {
        room: RoomName::parse("lobby").ok(),
        to: None,
        seq: Some(44),
        from: alice(),
        text: "hi".into(),
        at: format_time(1_795_860_000_123),
        file: None,
        re: Some("c-1".into()),
    };
    let json: serde_json::Value = serde_json::from_str(&frame.to_json()).unwrap_or_default();
    assert_eq!(json["type"], "message");
    assert_eq!(json["room"], "lobby");
    assert_eq!(json["seq"], 44);
    assert_eq!(json["from"]["name"], "alice");
    assert_eq!(json["re"], "c-1");
    assert_eq!(json["at"], "2026-11-28T10:00:00.123Z");
    assert!(json.get("to").is_none());
}

#[test]
fn errors_carry_code_and_retry_hint() {
    let error = ProtocolError::rate_limited(1200);
    let Outbound::Frame { kind, json } = ServerFrame::error(Some("c-7"), &error).to_outbound()
    else {
        panic!("an error frame is a frame");
    };
    assert_eq!(kind, ServerKind::Error);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(json["code"], "rate_limited");
    assert_eq!(json["retry_after_ms"], 1200);
    assert_eq!(json["re"], "c-7");
}

#[test]
fn history_embeds_messages_verbatim() {
    let one = MessageFrame {
        room: None,
        to: None,
        seq: Some(1),
        from: alice(),
        text: "a".into(),
        at: format_time(0),
        file: None,
        re: None,
    }
    .to_json();
    let room = RoomName::parse("lobby").unwrap();
    let Outbound::Frame { json, kind } = history_outbound(
        Some("h\"x"),
        &room,
        None,
        [one.as_str(), one.as_str()].into_iter(),
    ) else {
        panic!("frame");
    };
    assert_eq!(kind, ServerKind::History);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["type"], "history");
    assert_eq!(json["re"], "h\"x");
    assert_eq!(json["messages"][1]["type"], "message");
    assert_eq!(json["messages"][0]["seq"], 1);
    let Outbound::Frame { json, .. } = history_outbound(None, &room, None, std::iter::empty())
    else {
        panic!("frame")
    };
    assert_eq!(
        json.as_ref(),
        r#"{"type":"history","room":"lobby","messages":[]}"#
    );
}
