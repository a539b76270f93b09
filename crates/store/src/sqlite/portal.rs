//! The provider portal on SQLite: provider users, a provider's services,
//! and an institution's admins' e-mail addresses.

use super::identity::audit;
use super::{db, ts, CachedRow, SqliteStore};
use crate::admin_roles_sql;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use tilgang_core::audit::NewEvent;
use tilgang_core::store::portal::{NewProviderUser, PortalStore, ProviderUserRow};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

#[async_trait]
impl PortalStore for SqliteStore {
    async fn add_provider_user(
        &self,
        user: &NewProviderUser,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64> {
        let u = user.clone();
        self.write(move |conn| {
            let provider: bool = conn
                .cached_row(
                    "SELECT EXISTS (SELECT 1 FROM sharing_providers WHERE id = ?1)",
                    [u.provider_id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if !provider {
                return Err(Error::NotFound(format!("provider {}", u.provider_id)));
            }
            let taken: bool = conn
                .cached_row(
                    "SELECT EXISTS (SELECT 1 FROM persons WHERE user_id = ?1)",
                    [&u.user_id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if taken {
                return Err(Error::invalid(
                    "PORTAL_USER_EXISTS",
                    format!("user id {} is taken; try again", u.user_id),
                ));
            }
            let now = ts(at);
            conn.execute(
                "INSERT INTO persons (user_id, given_name, family_name, email, digest, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
                params![u.user_id, u.given_name, u.family_name, u.email, now],
            )
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            conn.execute(
                "INSERT INTO provider_users (person_id, provider_id, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
                params![id, u.provider_id, at.unix_timestamp(), event.actor],
            )
            .map_err(db)?;
            audit(conn, at, vec![event.subjects(vec![id])])?;
            Ok(id)
        })
        .await
    }

    async fn provider_of_person(&self, person_id: i64) -> Result<Option<i64>> {
        self.read(move |conn| {
            conn.cached_row(
                "SELECT provider_id FROM provider_users WHERE person_id = ?1",
                [person_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn provider_users(&self, provider_id: i64) -> Result<Vec<ProviderUserRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT p.id, p.user_id, p.given_name || ' ' || p.family_name, p.email, u.created_at
                     FROM provider_users u JOIN persons p ON p.id = u.person_id
                     WHERE u.provider_id = ?1 ORDER BY p.id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([provider_id], |r| {
                    Ok(ProviderUserRow {
                        person_id: r.get(0)?,
                        user_id: r.get(1)?,
                        name: r.get::<_, String>(2)?.trim().to_owned(),
                        email: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn provider_services(&self, provider_id: i64) -> Result<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT client_id FROM sharing_services WHERE provider_id = ?1 ORDER BY client_id")
                .map_err(db)?;
            let rows = stmt.query_map([provider_id], |r| r.get(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<String>>>().map_err(db)
        })
        .await
    }

    async fn admin_emails(&self, institution: &str) -> Result<Vec<String>> {
        let institution = institution.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT DISTINCT p.email FROM roles r
                     JOIN institutions i ON i.id = r.institution_id
                     JOIN persons p ON p.id = r.person_id
                     WHERE i.number = ?1 AND r.ended_on IS NULL AND r.role IN ({})
                       AND p.inactive_since IS NULL AND p.email IS NOT NULL AND p.email <> ''
                     ORDER BY p.email",
                    admin_roles_sql()
                ))
                .map_err(db)?;
            let rows = stmt.query_map([institution], |r| r.get(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<String>>>().map_err(db)
        })
        .await
    }
}
