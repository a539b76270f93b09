//! The one mapping from `tilgang_core::Error` to HTTP: RFC 9457 problem
//! details with the error's stable code. Internal details stay in the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tilgang_core::Error;

/// An RFC 9457 problem details body, as every error of tilgang's HTTP
/// surface (and every `/api` error) is sent: `application/problem+json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; its last segment is `code` in
    /// lower case.
    #[serde(rename = "type")]
    #[schema(example = "https://tilgang.dev/problems/not_found")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    /// The stable code: part of the interface, never changed.
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::ImportInvalid(_) | Error::ImportUnsupported(_) | Error::Invalid { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::UnknownInstitution(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Refused(_) => StatusCode::CONFLICT,
        Error::Gone { .. } => StatusCode::GONE,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Config(_)
        | Error::Crypto(_)
        | Error::Store(_)
        | Error::SchemaTooNew { .. }
        | Error::AuditBroken { .. }
        | Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let detail = if status.is_server_error() {
            tracing::error!(code = self.0.code(), error = %self.0, "request failed");
            "Something went wrong on our side. It has been logged; please try again later."
                .to_owned()
        } else {
            self.0.to_string()
        };
        let body = Problem {
            kind: format!(
                "https://tilgang.dev/problems/{}",
                self.0.code().to_ascii_lowercase()
            ),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: self.0.code().to_owned(),
            detail,
        };
        let mut res = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        let headers = res.headers_mut();
        match &self.0 {
            // RFC 6750: a bearer challenge with every 401.
            Error::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tilgang\", error=\"invalid_token\""),
                );
            }
            Error::Forbidden(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"tilgang\", error=\"insufficient_scope\"",
                    ),
                );
            }
            Error::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            _ => {}
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_error_kind_has_a_status() {
        let cases = [
            (Error::ImportInvalid(vec![]), 422),
            (Error::ImportUnsupported("x".into()), 422),
            (Error::UnknownInstitution("1".into()), 404),
            (Error::NotFound("x".into()), 404),
            (Error::Refused("x".into()), 409),
            (Error::Config("x".into()), 500),
            (Error::Crypto("x".into()), 500),
            (Error::Store("x".into()), 500),
            (Error::SchemaTooNew { found: 2, known: 1 }, 500),
            (
                Error::AuditBroken {
                    seq: 1,
                    reason: "x".into(),
                },
                500,
            ),
            (Error::io("x", "y"), 500),
            (Error::invalid("SHARING_PURPOSE_REQUIRED", "x"), 422),
            (
                Error::Gone {
                    code: "CHANGES_CURSOR_EXPIRED",
                    message: "x".into(),
                },
                410,
            ),
            (Error::Unauthenticated("x".into()), 401),
            (Error::Forbidden("x".into()), 403),
            (Error::RateLimited { retry_after_s: 1 }, 429),
        ];
        for (e, status) in cases {
            assert_eq!(status_of(&e).as_u16(), status, "{}", e.code());
        }
    }

    #[test]
    fn challenges_and_retry_after_go_with_their_status() {
        let res = ApiError(Error::Unauthenticated("x".into())).into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer "));
        let res = ApiError(Error::Forbidden("x".into())).into_response();
        assert!(res.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope"));
        let res = ApiError(Error::RateLimited { retry_after_s: 3 }).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn server_errors_do_not_leak_internals() {
        let res = ApiError(Error::Store("relation persons is on fire".into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
