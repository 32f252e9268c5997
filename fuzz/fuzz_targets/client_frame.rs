//! Fuzzes `parse_client_frame` (the text frames a WebSocket client sends) with any UTF-8:
//! it never panics, every refusal is a `bad_request` with a message, and what it accepts
//! agrees with the JSON it came from and parses the same once re-serialised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlink_actors::protocol::client::{FrameError, CLIENT_KINDS};
use peerlink_actors::protocol::values::MAX_REQUEST_ID;
use peerlink_actors::protocol::{parse_client_frame, ClientFrame, ErrorCode, ParsedFrame};
use serde_json::Value;

/// The `id` field every frame variant carries.
fn variant_id(frame: &ClientFrame) -> Option<&str> {
    let id = match frame {
        ClientFrame::Hello { id, .. }
        | ClientFrame::Join { id, .. }
        | ClientFrame::Leave { id, .. }
        | ClientFrame::Say { id, .. }
        | ClientFrame::History { id, .. }
        | ClientFrame::Ping { id, .. }
        | ClientFrame::Offer { id, .. }
        | ClientFrame::Accept { id, .. }
        | ClientFrame::Decline { id, .. }
        | ClientFrame::Ack { id, .. }
        | ClientFrame::End { id, .. }
        | ClientFrame::Cancel { id, .. }
        | ClientFrame::DebugPanic { id, .. } => id,
    };
    id.as_deref()
}

/// The request id a parse may report for this JSON: its `id` when that is a string.
fn json_id(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

fn check_ok(parsed: &ParsedFrame, value: &Value) {
    let kind = parsed.frame.kind();
    assert!(
        CLIENT_KINDS.contains(&kind),
        "kind {kind:?} is not a client kind"
    );
    assert_eq!(
        value.get("type").and_then(Value::as_str),
        Some(kind),
        "the frame's kind is its \"type\""
    );
    let id = parsed.id.as_deref();
    assert_eq!(id, json_id(value), "the request id is the frame's \"id\"");
    assert_eq!(
        id,
        variant_id(&parsed.frame),
        "the variant holds the same id"
    );
    if let Some(id) = id {
        assert!(id.chars().count() <= MAX_REQUEST_ID, "request id too long");
    }
}

fn check_err(error: &FrameError, text: &str) {
    assert_eq!(error.error.code, ErrorCode::BadRequest, "{error:?}");
    assert!(!error.error.message.is_empty(), "an error says why");
    assert_eq!(error.error.retry_after_ms, None);
    if let Some(id) = error.id.as_deref() {
        // An id is echoed only when it was a readable, short-enough string of the frame.
        assert!(id.chars().count() <= MAX_REQUEST_ID, "echoed id too long");
        let value: Value = serde_json::from_str(text).expect("an echoed id came from JSON");
        assert_eq!(json_id(&value), Some(id), "the echoed id is the frame's");
    }
}

fuzz_target!(|text: &str| {
    let result = parse_client_frame(text);
    match &result {
        Ok(parsed) => {
            let value: Value = serde_json::from_str(text).expect("an accepted frame is JSON");
            check_ok(parsed, &value);
        }
        Err(error) => check_err(error, text),
    }
    // The same JSON written out again by serde must get the same answer: nothing depends
    // on spacing, escapes or key order.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let again = serde_json::to_string(&value).expect("a Value serialises");
        match (&result, parse_client_frame(&again)) {
            (Ok(first), Ok(second)) => assert_eq!(first, &second),
            (Err(first), Err(second)) => {
                assert_eq!(
                    (first.id.clone(), first.error.code),
                    (second.id, second.error.code)
                )
            }
            (first, second) => panic!("{text:?} gave {first:?}, re-serialised {second:?}"),
        }
    }
});
