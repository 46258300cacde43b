//! Herald's HTTP API.
//!
//! Layout:
//! - [`run`]: serves the API on a listener until `shutdown` resolves; testable on port 0.
//! - `routes`: one module per resource (webhooks, events, deliveries, health).
//! - `error`: `ApiError`, the `{"code","message"}` body every failure answers with.
//! - `extract`: the JSON extractor that turns serde and content-type rejections into `ApiError`s.
//! - `auth`: the bearer-token layer in front of `/api/`.
//! - `openapi`: the OpenAPI 3.1 document generated from the handlers.
//!
//! Store records never go on the wire: every response has its own type here.
