//! The Rust client against the real server: decisions, and failing closed.

mod common;

use common::*;
use signet::client::{ClientError, ClientOptions, SignetClient};
use tonic::Code;

fn client(server: &Signet) -> SignetClient {
    SignetClient::new(&server.url(), ClientOptions::default()).unwrap()
}

#[tokio::test]
async fn verifies_with_a_locally_hashed_body() {
    let server = Signet::builder().test_keys().start();
    let signet = client(&server);
    let body = vec![42u8; 100_000];
    let valid = signet
        .verify_signature(&token(TEST_NEXT, &body, URL), &body, URL)
        .await
        .unwrap();
    assert!(valid.valid);
    let forged = signet
        .verify_signature(&token(CURRENT, &body, URL), &body, URL)
        .await
        .unwrap();
    assert!(!forged.valid);
    let altered = signet
        .verify_signature(&token(TEST_CURRENT, &body, URL), &body[1..], URL)
        .await
        .unwrap();
    assert!(!altered.valid);
}

#[tokio::test]
async fn no_keys_is_an_error_after_bounded_retries() {
    let server = Signet::builder().start();
    let signet = client(&server);
    let err = signet
        .verify_signature(&token(TEST_CURRENT, b"", URL), b"", URL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Call(ref s) if s.code() == Code::Unavailable),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_down_is_an_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let signet = SignetClient::new(&format!("http://{addr}"), ClientOptions::default()).unwrap();
    assert!(signet.verify_signature("x.y.z", b"", "").await.is_err());
    assert!(matches!(
        SignetClient::new("not a uri", ClientOptions::default()),
        Err(ClientError::InvalidAddress)
    ));
}
