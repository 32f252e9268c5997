use super::*;
use crate::protocol::ErrorCode;

fn code_of(text: &str) -> Option<ErrorCode> {
    parse_client_frame(text).err().map(|e| e.error.code)
}

#[test]
fn parses_every_documented_frame() {
    let say = parse_client_frame(r#"{"type":"say","id":"c-1","room":"lobby","text":"hi"}"#);
    assert_eq!(
        say.map(|p| (p.id, p.frame)),
        Ok((
            Some("c-1".into()),
            ClientFrame::Say {
                id: Some("c-1".into()),
                room: Some("lobby".into()),
                to: None,
                text: "hi".into(),
                upload: None,
            }
        ))
    );
    let join = parse_client_frame(r#"{"type":"join","room":"lobby","since":41}"#).map(|p| p.frame);
    assert_eq!(
        join,
        Ok(ClientFrame::Join {
            id: None,
            room: "lobby".into(),
            since: Some(41)
        })
    );
    let hello = parse_client_frame(r#"{"type":"hello","token":"t"}"#).map(|p| p.frame);
    assert_eq!(
        hello,
        Ok(ClientFrame::Hello {
            id: None,
            name: None,
            token: Some("t".into())
        })
    );
    let history = parse_client_frame(
        r#"{"type":"history","id":"c-2","room":"lobby","before":44,"limit":50}"#,
    );
    assert!(matches!(
        history.map(|p| p.frame),
        Ok(ClientFrame::History {
            before: Some(44),
            limit: Some(50),
            ..
        })
    ));
    assert!(parse_client_frame(r#"{"type":"leave","room":"lobby"}"#).is_ok());
}

#[test]
fn malformed_json_is_a_bad_request() {
    assert_eq!(code_of("{not json"), Some(ErrorCode::BadRequest));
    assert_eq!(code_of("[1,2]"), Some(ErrorCode::BadRequest));
    assert_eq!(code_of("\"hello\""), Some(ErrorCode::BadRequest));
}

#[test]
fn unknown_or_missing_type_is_a_bad_request_that_keeps_the_id() {
    let err = parse_client_frame(r#"{"type":"teleport","id":"x-9"}"#).err();
    assert_eq!(
        err.as_ref().map(|e| e.error.code),
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(err.and_then(|e| e.id), Some("x-9".into()));
    assert_eq!(code_of(r#"{"id":"a"}"#), Some(ErrorCode::BadRequest));
    assert_eq!(code_of(r#"{"type":7}"#), Some(ErrorCode::BadRequest));
}

#[test]
fn wrong_field_types_and_missing_fields_are_bad_requests() {
    assert_eq!(code_of(r#"{"type":"join"}"#), Some(ErrorCode::BadRequest));
    assert_eq!(
        code_of(r#"{"type":"join","room":5}"#),
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(
        code_of(r#"{"type":"join","room":"a","since":-1}"#),
        Some(ErrorCode::BadRequest)
    );
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    assert!(parse_client_frame(r#"{"type":"say","room":"a","text":"x","colour":"red"}"#).is_ok());
}

#[test]
fn request_ids_are_bounded() {
    let long_id = "i".repeat(65);
    let frame = format!(r#"{{"type":"ping","id":"{long_id}"}}"#);
    assert_eq!(code_of(&frame), Some(ErrorCode::BadRequest));
    assert_eq!(
        code_of(r#"{"type":"ping","id":5}"#),
        Some(ErrorCode::BadRequest)
    );
    let ok = format!(r#"{{"type":"ping","id":"{}"}}"#, "i".repeat(64));
    assert!(parse_client_frame(&ok).is_ok());
}
