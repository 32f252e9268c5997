//! A complete upload posted into a room or to a person: the message carries the file's
//! name, size, SHA-256 and a share link that returns the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Client, Node, NodeData};
use serde_json::json;
use sha2::{Digest, Sha256};

on_both_backends!(
    a_posted_upload_reaches_the_room_and_its_history,
    a_posted_upload_reaches_a_person,
    posting_someone_elses_or_an_unfinished_upload_fails,
    uploads_stay_within_the_users_quota,
    creating_uploads_is_rate_limited_per_user
);

/// Uploads `data` in one tus request (creation-with-upload); returns the upload id.
async fn upload(node: &Node, token: &str, name: &str, data: &[u8]) -> String {
    let (url, token, data) = (node.url("/files/"), token.to_owned(), data.to_vec());
    let metadata = format!("filename {}", base64_encode(name.as_bytes()));
    tokio::task::spawn_blocking(move || {
        let response = ureq::post(&url)
            .set("Tus-Resumable", "1.0.0")
            .set("Authorization", &format!("Bearer {token}"))
            .set("Upload-Length", &data.len().to_string())
            .set("Upload-Metadata", &metadata)
            .set("Content-Type", "application/offset+octet-stream")
            .send_bytes(&data)
            .expect("create the upload");
        assert_eq!(
            response.header("Upload-Offset"),
            Some(data.len().to_string().as_str())
        );
        response
            .header("Location")
            .expect("location")
            .rsplit('/')
            .next()
            .expect("id")
            .to_owned()
    })
    .await
    .expect("upload task")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn download(node: &Node, path: &str) -> Vec<u8> {
    let url = node.url(path);
    tokio::task::spawn_blocking(move || {
        let mut body = Vec::new();
        std::io::Read::read_to_end(
            &mut ureq::get(&url).call().expect("download").into_reader(),
            &mut body,
        )
        .expect("read");
        body
    })
    .await
    .expect("download task")
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn a_posted_upload_reaches_the_room_and_its_history(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("lobby", None).await;
    bob.join("lobby", None).await;
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = upload(&node, &alice.token.clone(), "plan.pdf", &data).await;

    let ack = alice
        .request(json!({"type": "say", "room": "lobby", "text": "the plan", "upload": id}))
        .await;
    assert_eq!(ack["type"], "message", "{ack}");
    let heard = bob.next_message("lobby").await;
    let file = &heard["file"];
    assert_eq!(
        (
            file["name"].as_str(),
            file["size"].as_u64(),
            file["upload"].as_str()
        ),
        (Some("plan.pdf"), Some(data.len() as u64), Some(id.as_str())),
        "{heard}"
    );
    assert_eq!(file["sha256"], sha256_hex(&data).as_str());
    assert_eq!(heard["text"], "the plan");
    let url = file["url"].as_str().expect("a share link");
    assert!(url.starts_with("/s/"), "{url}");
    assert!(
        download(&node, url).await == data,
        "the link returns the uploaded bytes"
    );

    // A file alone, without text, is a message too; and history keeps the file.
    alice
        .request(json!({"type": "say", "room": "lobby", "upload": id}))
        .await;
    let history = bob
        .request(json!({"type": "history", "room": "lobby"}))
        .await;
    let files: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["file"]["name"].clone())
        .collect();
    assert_eq!(files, vec![json!("plan.pdf"), json!("plan.pdf")]);

    // A plain message sent right behind a file, without waiting, comes after it.
    alice
        .send_together(&[
            json!({"type": "say", "id": "f", "room": "lobby", "upload": id}),
            json!({"type": "say", "id": "t", "room": "lobby", "text": "see above"}),
        ])
        .await;
    let (with_file, plain) = (alice.reply_to("f").await, alice.reply_to("t").await);
    assert!(
        with_file["seq"].as_u64() < plain["seq"].as_u64(),
        "the file first: {with_file} {plain}"
    );
}

async fn a_posted_upload_reaches_a_person(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let data = b"for your eyes only".to_vec();
    let id = upload(&node, &alice.token.clone(), "note.txt", &data).await;
    let ack = alice
        .request(json!({"type": "say", "to": bob.user_id, "text": "here", "upload": id}))
        .await;
    assert_eq!(ack["file"]["name"], "note.txt", "{ack}");
    let copy = bob.next_of("message").await;
    assert_eq!(copy["file"]["sha256"], sha256_hex(&data).as_str());
    assert!(download(&node, copy["file"]["url"].as_str().unwrap()).await == data);
}

async fn posting_someone_elses_or_an_unfinished_upload_fails(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    bob.join("lobby", None).await;
    let alices = upload(&node, &alice.token.clone(), "mine.bin", b"abc").await;
    let reply = bob
        .request(json!({"type": "say", "room": "lobby", "upload": alices}))
        .await;
    assert_eq!(reply["code"], "not_found", "{reply}");
    let reply = bob
        .request(json!({"type": "say", "room": "lobby", "upload": "not-a-uuid"}))
        .await;
    assert_eq!(reply["code"], "bad_request");
    let reply = bob.request(json!({"type": "say", "room": "lobby"})).await;
    assert_eq!(
        reply["code"], "bad_request",
        "neither text nor file: {reply}"
    );
    alice.join("lobby", None).await;
    let unfinished = {
        let (url, token) = (node.url("/files/"), alice.token.clone());
        tokio::task::spawn_blocking(move || {
            let response = ureq::post(&url)
                .set("Tus-Resumable", "1.0.0")
                .set("Authorization", &format!("Bearer {token}"))
                .set("Upload-Length", "10")
                .call()
                .unwrap();
            response
                .header("Location")
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .await
        .unwrap()
    };
    let reply = alice
        .request(json!({"type": "say", "room": "lobby", "upload": unfinished}))
        .await;
    assert_eq!(reply["code"], "conflict", "{reply}");
}

/// What a request answered, error statuses included.
struct Reply {
    status: u16,
    location: String,
    retry_after: Option<String>,
    body: String,
}

/// Sends `request` (with `body` unless it is empty), off the async runtime.
async fn reply(request: ureq::Request, body: &'static str) -> Reply {
    tokio::task::spawn_blocking(move || {
        let result = if body.is_empty() {
            request.call()
        } else {
            request.send_string(body)
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        Reply {
            status: response.status(),
            location: response.header("Location").unwrap_or("").to_owned(),
            retry_after: response.header("Retry-After").map(str::to_owned),
            body: response.into_string().unwrap_or_default(),
        }
    })
    .await
    .unwrap()
}

/// `POST /files/` for `length` bytes without a body: (status, Location or the error body).
async fn create(node: &Node, token: &str, length: u64) -> (u16, String) {
    let request = ureq::post(&node.url("/files/"))
        .set("Tus-Resumable", "1.0.0")
        .set("Authorization", &format!("Bearer {token}"))
        .set("Upload-Length", &length.to_string());
    let answer = reply(request, "").await;
    let text = if answer.status == 201 {
        answer.location
    } else {
        answer.body
    };
    (answer.status, text)
}

async fn uploads_stay_within_the_users_quota(backend: Backend) {
    let settings = [("PEERLINK_UPLOAD_QUOTA_BYTES", "1000")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;

    let (status, first) = create(&node, &alice.token, 600).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = create(&node, &alice.token, 600).await;
    assert_eq!(
        status, 413,
        "1200 bytes would pass the quota of 1000: {body}"
    );
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "too_large");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("quota of 1000 bytes"),
        "{error}"
    );
    assert_eq!(
        create(&node, &alice.token, 400).await.0,
        201,
        "exactly at the quota is fine"
    );
    assert_eq!(
        create(&node, &bob.token, 1000).await.0,
        201,
        "the quota is per user"
    );

    // Deleting an upload gives its room back.
    let request = ureq::delete(&node.url(&first))
        .set("Tus-Resumable", "1.0.0")
        .set("Authorization", &format!("Bearer {}", alice.token));
    let deleted = reply(request, "").await.status;
    assert_eq!(deleted, 204);
    assert_eq!(create(&node, &alice.token, 600).await.0, 201);
}

async fn creating_uploads_is_rate_limited_per_user(backend: Backend) {
    let settings = [("PEERLINK_CREATIONS_PER_MINUTE", "2")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;
    assert_eq!(create(&node, &alice.token, 0).await.0, 201);
    assert_eq!(create(&node, &alice.token, 0).await.0, 201);
    let (status, body) = create(&node, &alice.token, 0).await;
    assert_eq!(status, 429, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "rate_limited");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("too many new uploads"),
        "{error}"
    );
    // Share links draw on the same budget.
    let request = ureq::post(&node.url("/api/shares"))
        .set("Authorization", &format!("Bearer {}", alice.token))
        .set("Content-Type", "application/json");
    let answer = reply(
        request,
        r#"{"upload":"00000000-0000-0000-0000-000000000000"}"#,
    )
    .await;
    let (status, retry_after) = (answer.status, answer.retry_after);
    assert_eq!(status, 429);
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=30).contains(&wait),
        "one creation comes back every 30 s: {wait}"
    );
    // The budget is per user.
    assert_eq!(create(&node, &bob.token, 0).await.0, 201);
}
