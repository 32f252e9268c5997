//! Table definitions, identical for SQLite and PostgreSQL (see `migrations/`).

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        created_ms -> BigInt,
    }
}

diesel::table! {
    tokens (hash) {
        hash -> Text,
        user_id -> Text,
        created_ms -> BigInt,
        last_used_ms -> BigInt,
    }
}

diesel::table! {
    rooms (name) {
        name -> Text,
        created_ms -> BigInt,
    }
}

diesel::table! {
    messages (room, seq) {
        room -> Text,
        seq -> BigInt,
        user_id -> Text,
        user_name -> Text,
        body -> Text,
        at_ms -> BigInt,
        attachment -> Nullable<Text>,
    }
}

diesel::table! {
    direct_messages (id) {
        id -> Text,
        from_id -> Text,
        from_name -> Text,
        to_id -> Text,
        body -> Text,
        at_ms -> BigInt,
        attachment -> Nullable<Text>,
    }
}

diesel::joinable!(tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    tokens,
    rooms,
    messages,
    direct_messages,
    transfers,
    uploads,
    shares
);

diesel::table! {
    transfers (id) {
        id -> Text,
        sender_id -> Text,
        sender_name -> Text,
        room -> Nullable<Text>,
        name -> Text,
        size -> BigInt,
        mime -> Text,
        sha256 -> Nullable<Text>,
        receivers -> Text,
        acked -> BigInt,
        digest -> Binary,
        created_ms -> BigInt,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        owner_id -> Text,
        name -> Text,
        mime -> Text,
        metadata -> Text,
        length -> BigInt,
        received -> BigInt,
        digest -> Binary,
        sha256 -> Nullable<Text>,
        created_ms -> BigInt,
        expires_ms -> BigInt,
        writer -> Nullable<Text>,
        writer_until_ms -> BigInt,
        settled_us -> BigInt,
    }
}

diesel::table! {
    shares (hash) {
        hash -> Text,
        upload_id -> Text,
        owner_id -> Text,
        created_ms -> BigInt,
        expires_ms -> BigInt,
        max_downloads -> Nullable<BigInt>,
        downloads -> BigInt,
        revoked_ms -> Nullable<BigInt>,
        bytes_served -> BigInt,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        incarnation -> BigInt,
        started_ms -> BigInt,
    }
}

diesel::table! {
    owners (kind, key) {
        kind -> Text,
        key -> Text,
        epoch -> BigInt,
        node -> Text,
        incarnation -> BigInt,
        claimed_ms -> BigInt,
    }
}
