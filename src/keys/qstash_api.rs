//! The QStash keys API: `GET {QSTASH_URL}/v2/keys` and
//! `POST {QSTASH_URL}/v2/keys/rotate`, both answering
//! `{"current":"...","next":"..."}`, authenticated with the account's token.

use std::{collections::HashMap, time::SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    KeyPair, KeySet, KeySource, KeySourceError,
    source::{is_single_key, pair},
};
use crate::{config::QstashApiConfig, secret::Secret};

/// Largest keys API answer read: a key pair is well under 1 KiB, so a larger
/// answer is not one, and is not buffered whole.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A client of one QStash account's keys API.
#[derive(Debug, Clone)]
pub struct QstashApi {
    http: reqwest::Client,
    url: String,
    token: Secret,
}

#[derive(Deserialize)]
struct KeysAnswer {
    current: Secret,
    next: Secret,
}

impl QstashApi {
    /// A client for `config` (rustls, the configured timeout).
    pub fn new(config: &QstashApiConfig) -> Result<Self, KeySourceError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KeySourceError::Request(e.without_url().to_string()))?;
        Ok(Self {
            http,
            url: config.url.clone(),
            token: config.token.clone(),
        })
    }

    fn bearer(&self) -> Result<HeaderValue, KeySourceError> {
        let mut value = Zeroizing::new(b"Bearer ".to_vec());
        value.extend_from_slice(self.token.expose());
        let mut header = HeaderValue::from_bytes(&value).map_err(|_| {
            KeySourceError::Request("the QStash token is not a header value".into())
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// The account's current signing keys.
    pub async fn fetch(&self) -> Result<KeyPair, KeySourceError> {
        let request = self.http.get(format!("{}/v2/keys", self.url));
        self.send(request).await
    }

    /// Rolls the account's keys (the old next key becomes current) and
    /// returns the new pair.
    pub async fn rotate(&self) -> Result<KeyPair, KeySourceError> {
        let request = self.http.post(format!("{}/v2/keys/rotate", self.url));
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<KeyPair, KeySourceError> {
        let mut response = request
            .header(AUTHORIZATION, self.bearer()?)
            .send()
            .await
            .map_err(|e| KeySourceError::Request(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(KeySourceError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(KeySourceError::ApiTooLarge);
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| KeySourceError::Request(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(KeySourceError::ApiTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let answer: KeysAnswer =
            serde_json::from_slice(&body).map_err(|_| KeySourceError::Decode)?;
        // The same checks as a key directory: an answer that is not two
        // distinct single keys never replaces good keys.
        if !is_single_key(answer.current.expose()) || !is_single_key(answer.next.expose()) {
            return Err(KeySourceError::Decode);
        }
        if answer.current == answer.next {
            return Err(KeySourceError::ApiSameKeys);
        }
        pair(Some(answer.current), Some(answer.next)).ok_or(KeySourceError::Decode)
    }
}

/// The key sets the API fills: one, named `key_set`.
pub fn api_sets(key_set: &str, pair: KeyPair, now: SystemTime) -> HashMap<String, KeySet> {
    HashMap::from([(
        key_set.to_owned(),
        KeySet {
            default: Some(pair),
            regions: HashMap::new(),
            source: KeySource::QstashApi,
            loaded_at: now,
        },
    )])
}
