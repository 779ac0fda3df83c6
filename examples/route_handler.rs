//! A Workflow route whose route function and failure function are both
//! guarded by signet: one `Authorize` call per incoming request.
//!
//! ```sh
//! cargo run --release -- serve --dev &
//! cargo run --features client --example route_handler -- http://127.0.0.1:50051
//! ```

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use signet::client::{ClientOptions, HttpRequest, SignetClient};

/// The url QStash calls, as configured there (behind a proxy the host this
/// process sees may differ, so it is configuration, not the request's Host).
const PUBLIC_URL: &str = "https://my-service.example/api/workflow";

async fn workflow(
    State(signet): State<SignetClient>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let request = HttpRequest {
        method: "POST",
        url: PUBLIC_URL,
        headers,
        body: &body,
        policy: "",
    };
    match signet.authorize(&request).await {
        Ok(decision) if decision.allowed && decision.failure_callback => {
            // The failure function: the original caller's credential was checked too.
            println!("failure callback for {}", decision.subject);
            StatusCode::OK
        }
        Ok(decision) if decision.allowed => {
            println!("step for {}", decision.subject);
            StatusCode::OK
        }
        Ok(decision) => {
            println!("denied: {}", decision.message);
            StatusCode::UNAUTHORIZED
        }
        // signet could not decide: fail closed; QStash retries later.
        Err(e) => {
            eprintln!("signet: {e}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let signet = SignetClient::new(&address, ClientOptions::default())?;
    let app = Router::new()
        .route("/api/workflow", post(workflow))
        .with_state(signet);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "route handler on http://{}/api/workflow",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
