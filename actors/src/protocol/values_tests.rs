use super::*;
use crate::protocol::ErrorCode;

#[test]
fn room_names_follow_the_protocol() {
    for ok in ["lobby", "a", "A-b_c.9", &"x".repeat(64)] {
        assert_eq!(
            RoomName::parse(ok).map(|r| r.as_str().to_owned()),
            Ok(ok.to_owned())
        );
    }
    for bad in [
        "",
        "with space",
        "ümlaut",
        "semi;colon",
        "slash/",
        &"x".repeat(65),
    ] {
        let err = RoomName::parse(bad).err();
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::BadRequest), "{bad:?}");
    }
}

#[test]
fn text_length_counts_characters_not_bytes() {
    let four_thousand_snowmen = "☃".repeat(4000);
    assert!(validate_text(&four_thousand_snowmen, 4000).is_ok());
    let too_long = "☃".repeat(4001);
    assert_eq!(
        validate_text(&too_long, 4000).err().map(|e| e.code),
        Some(ErrorCode::TooLarge)
    );
    assert_eq!(
        validate_text("   ", 4000).err().map(|e| e.code),
        Some(ErrorCode::BadRequest)
    );
}

#[test]
fn user_names_are_trimmed_and_bounded() {
    assert_eq!(validate_user_name("  alice "), Ok("alice".to_owned()));
    assert!(validate_user_name("").is_err());
    assert!(validate_user_name("bell\u{7}").is_err());
    assert!(validate_user_name(&"n".repeat(33)).is_err());
    assert!(validate_user_name(&"n".repeat(32)).is_ok());
}

#[test]
fn user_ids_are_uuids() {
    assert!(UserId::parse("4f1c0a4e-8d1c-4a1e-9b7e-2b0c8f8e8a11").is_ok());
    assert_eq!(
        UserId::parse("bob").err().map(|e| e.code),
        Some(ErrorCode::BadRequest)
    );
}

#[test]
fn names_refuse_invisible_and_direction_changing_characters() {
    for sneaky in [
        "alice\u{202e}fdp.exe",
        "bob\u{200b}",
        "\u{2066}carol",
        "dave\u{feff}",
        "eve\u{ad}",
        "tag\u{e0041}",
    ] {
        assert!(validate_user_name(sneaky).is_err(), "{sneaky:?}");
        assert!(validate_file_name(sneaky).is_err(), "{sneaky:?}");
    }
    // Letters, marks and symbols of every script stay welcome.
    for fine in ["Zoë", "مرحبا", "日本語.pdf", "résumé (final).pdf", "👩‍💻"] {
        assert!(validate_user_name(fine).is_ok(), "{fine:?}");
        assert!(validate_file_name(fine).is_ok(), "{fine:?}");
    }
}

#[test]
fn a_joiner_is_allowed_only_inside_an_emoji() {
    assert!(validate_user_name("ali\u{200d}ce").is_err());
    assert!(validate_user_name("\u{200d}alice").is_err());
    assert!(validate_user_name("👩\u{200d}💻").is_ok());
}
