//! `/api/openapi.json` and the browsable docs page `/api/docs` (Swagger
//! UI). The page's scripts and styles are compiled into the binary from
//! the vendored Swagger UI archive (`utoipa-swagger-ui`'s `vendored`
//! feature), so nothing is fetched at build or run time.

use crate::AppState;
use axum::Router;
use std::sync::Arc;
use utoipa_swagger_ui::SwaggerUi;

pub(super) fn routes() -> Router<Arc<AppState>> {
    SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", super::document())
        .into()
}
