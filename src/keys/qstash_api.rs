//! The QStash keys API: `GET {QSTASH_URL}/v2/keys` and
//! `POST {QSTASH_URL}/v2/keys/rotate`, both answering
//! `{"current":"...","next":"..."}`, authenticated with the account's token.

use std::{collections::HashMap, time::SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{KeyPair, KeySet, KeySource, KeySourceError, source::pair};
use crate::{config::QstashApiConfig, secret::Secret};

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
        let response = request
            .header(AUTHORIZATION, self.bearer()?)
            .send()
            .await
            .map_err(|e| KeySourceError::Request(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(KeySourceError::Status(status.as_u16()));
        }
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| KeySourceError::Request(e.without_url().to_string()))?
                .to_vec(),
        );
        let answer: KeysAnswer =
            serde_json::from_slice(&body).map_err(|_| KeySourceError::Decode)?;
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
