//! The provider portal on PostgreSQL: the SQLite implementation
//! (`sqlite/portal.rs`) query for query.

use super::identity::audit;
use super::{db, execute, query, PgStore};
use crate::admin_roles_sql;
use async_trait::async_trait;
use tilgang_core::audit::NewEvent;
use tilgang_core::store::portal::{NewProviderUser, PortalStore, ProviderUserRow};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

#[async_trait]
impl PortalStore for PgStore {
    async fn add_provider_user(
        &self,
        u: &NewProviderUser,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        if query(
            &tx,
            "SELECT 1 FROM sharing_providers WHERE id = $1",
            &[&u.provider_id],
        )
        .await?
        .is_empty()
        {
            return Err(Error::NotFound(format!("provider {}", u.provider_id)));
        }
        let rows = query(
            &tx,
            "INSERT INTO persons (user_id, given_name, family_name, email, digest, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (user_id) DO NOTHING RETURNING id",
            &[&u.user_id, &u.given_name, &u.family_name, &u.email, &at],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Err(Error::invalid(
                "PORTAL_USER_EXISTS",
                format!("user id {} is taken; try again", u.user_id),
            ));
        };
        let id: i64 = row.try_get(0).map_err(db)?;
        execute(
            &tx,
            "INSERT INTO provider_users (person_id, provider_id, created_at, created_by) VALUES ($1, $2, $3, $4)",
            &[&id, &u.provider_id, &at.unix_timestamp(), &event.actor],
        )
        .await?;
        audit(&tx, at, vec![event.subjects(vec![id])]).await?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn provider_of_person(&self, person_id: i64) -> Result<Option<i64>> {
        let rows = query(
            &self.conn().await?,
            "SELECT provider_id FROM provider_users WHERE person_id = $1",
            &[&person_id],
        )
        .await?;
        rows.first().map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn provider_users(&self, provider_id: i64) -> Result<Vec<ProviderUserRow>> {
        let rows = query(
            &self.conn().await?,
            "SELECT p.id, p.user_id, p.given_name || ' ' || p.family_name, p.email, u.created_at
             FROM provider_users u JOIN persons p ON p.id = u.person_id
             WHERE u.provider_id = $1 ORDER BY p.id",
            &[&provider_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProviderUserRow {
                    person_id: r.try_get(0).map_err(db)?,
                    user_id: r.try_get(1).map_err(db)?,
                    name: r.try_get::<_, String>(2).map_err(db)?.trim().to_owned(),
                    email: r.try_get(3).map_err(db)?,
                    created_at: r.try_get(4).map_err(db)?,
                })
            })
            .collect()
    }

    async fn provider_services(&self, provider_id: i64) -> Result<Vec<String>> {
        let rows = query(
            &self.conn().await?,
            "SELECT client_id FROM sharing_services WHERE provider_id = $1 ORDER BY client_id",
            &[&provider_id],
        )
        .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn admin_emails(&self, institution: &str) -> Result<Vec<String>> {
        let rows = query(
            &self.conn().await?,
            &format!(
                "SELECT DISTINCT p.email FROM roles r
                 JOIN institutions i ON i.id = r.institution_id
                 JOIN persons p ON p.id = r.person_id
                 WHERE i.number = $1 AND r.ended_on IS NULL AND r.role IN ({})
                   AND p.inactive_since IS NULL AND p.email IS NOT NULL AND p.email <> ''
                 ORDER BY p.email",
                admin_roles_sql()
            ),
            &[&institution],
        )
        .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }
}
