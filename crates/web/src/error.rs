//! The one mapping from `tilgang_core::Error` to HTTP: RFC 9457 problem
//! details with the error's stable code. Internal details stay in the log.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tilgang_core::Error;

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
        let body = serde_json::json!({
            "type": format!("https://tilgang.dev/problems/{}", self.0.code().to_ascii_lowercase()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "code": self.0.code(),
            "detail": detail,
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
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
        ];
        for (e, status) in cases {
            assert_eq!(status_of(&e).as_u16(), status, "{}", e.code());
        }
    }

    #[test]
    fn server_errors_do_not_leak_internals() {
        let res = ApiError(Error::Store("relation persons is on fire".into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
