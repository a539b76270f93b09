//! Staff standing, pupil and employee lists, right grants and login cards
//! on PostgreSQL: the SQLite implementation (`sqlite/staff.rs`) query for
//! query, each change in one transaction with its audit events.

use super::identity::audit;
use super::{db, execute, query, Param, PgStore};
use async_trait::async_trait;
use tilgang_core::audit::NewEvent;
use tilgang_core::roster::RoleKind;
use tilgang_core::store::staff::{
    EmployeeRow, FormerRow, MunicipalInstitution, PupilRow, StaffStanding, StaffStore,
};
use tilgang_core::store::AccountRecord;
use tilgang_core::Result;
use time::OffsetDateTime;

/// An `array_agg` that found nothing is NULL.
fn list(v: Option<Vec<String>>) -> Vec<String> {
    v.unwrap_or_default()
}

fn roles(v: Option<Vec<String>>) -> Vec<RoleKind> {
    list(v).iter().filter_map(|r| RoleKind::parse(r)).collect()
}

/// Names as everybody but authorities may see them.
const NAMES: &str =
    "CASE WHEN p.protected AND p.alias_given_name IS NOT NULL THEN p.alias_given_name ELSE p.given_name END,
     CASE WHEN p.protected AND p.alias_family_name IS NOT NULL THEN p.alias_family_name ELSE p.family_name END";

/// One statement and, when it changed a row, its audit event, in one
/// transaction (a grant or a revocation); the number of rows changed.
pub(super) async fn audited_change(
    store: &PgStore,
    sql: &str,
    params: &[Param<'_>],
    at: OffsetDateTime,
    event: NewEvent,
) -> Result<u64> {
    let mut c = store.conn().await?;
    let tx = c.transaction().await.map_err(db)?;
    let n = execute(&tx, sql, params).await?;
    if n > 0 {
        audit(&tx, at, vec![event]).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(n)
}

#[async_trait]
impl StaffStore for PgStore {
    async fn staff_standing(&self, person_id: i64) -> Result<Vec<StaffStanding>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT i.id, i.number, i.name, array_agg(DISTINCT r.role),
                (SELECT array_agg(g.right_name) FROM right_grants g
                 WHERE g.institution_id = i.id AND g.person_id = $1)
             FROM roles r JOIN institutions i ON i.id = r.institution_id JOIN persons p ON p.id = r.person_id
             WHERE r.person_id = $1 AND r.actor = 'Medarbejder' AND r.ended_on IS NULL
               AND p.inactive_since IS NULL
             GROUP BY i.id, i.number, i.name",
            &[&person_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StaffStanding {
                    institution_id: r.try_get(0).map_err(db)?,
                    number: r.try_get(1).map_err(db)?,
                    name: r.try_get(2).map_err(db)?,
                    roles: roles(r.try_get(3).map_err(db)?),
                    granted: list(r.try_get(4).map_err(db)?),
                })
            })
            .collect()
    }

    async fn institution_pupils(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<PupilRow>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!(
                "SELECT p.id, p.user_id, {NAMES}, g.ext_id, g.name,
                    a.password_hash IS NOT NULL, a.locked_until, lc.person_id IS NOT NULL
                 FROM roles r
                 JOIN persons p ON p.id = r.person_id
                 LEFT JOIN roster_groups g ON g.institution_id = r.institution_id AND g.ext_id = r.main_group
                   AND g.ended_on IS NULL
                 LEFT JOIN accounts a ON a.person_id = p.id
                 LEFT JOIN login_cards lc ON lc.person_id = p.id
                 WHERE r.institution_id = $1 AND r.actor = 'Elev' AND r.ended_on IS NULL
                   AND p.inactive_since IS NULL AND ($2::text IS NULL OR p.user_id = $2)"
            ),
            &[&institution_id, &user_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PupilRow {
                    person_id: r.try_get(0).map_err(db)?,
                    user_id: r.try_get(1).map_err(db)?,
                    given_name: r.try_get(2).map_err(db)?,
                    family_name: r.try_get(3).map_err(db)?,
                    class_id: r.try_get(4).map_err(db)?,
                    class: r.try_get(5).map_err(db)?,
                    has_password: r.try_get(6).map_err(db)?,
                    locked_until: r.try_get(7).map_err(db)?,
                    has_card: r.try_get(8).map_err(db)?,
                })
            })
            .collect()
    }

    async fn institution_employees(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<EmployeeRow>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!(
                "SELECT p.id, p.user_id, {NAMES}, array_agg(DISTINCT r.role),
                    (SELECT array_agg(g.right_name) FROM right_grants g
                     WHERE g.institution_id = $1 AND g.person_id = p.id),
                    a.locked_until
                 FROM roles r
                 JOIN persons p ON p.id = r.person_id
                 LEFT JOIN accounts a ON a.person_id = p.id
                 WHERE r.institution_id = $1 AND r.actor = 'Medarbejder' AND r.ended_on IS NULL
                   AND p.inactive_since IS NULL AND ($2::text IS NULL OR p.user_id = $2)
                 GROUP BY p.id, a.locked_until"
            ),
            &[&institution_id, &user_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmployeeRow {
                    person_id: r.try_get(0).map_err(db)?,
                    user_id: r.try_get(1).map_err(db)?,
                    given_name: r.try_get(2).map_err(db)?,
                    family_name: r.try_get(3).map_err(db)?,
                    roles: roles(r.try_get(4).map_err(db)?),
                    granted: list(r.try_get(5).map_err(db)?),
                    locked_until: r.try_get(6).map_err(db)?,
                })
            })
            .collect()
    }

    async fn former_persons(
        &self,
        institution_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FormerRow>> {
        let c = self.conn().await?;
        let (offset, limit) = (offset as i64, limit as i64);
        let rows = query(
            &c,
            &format!(
                "SELECT p.id, p.user_id, {NAMES}, array_agg(DISTINCT l.actor ORDER BY l.actor),
                    p.inactive_since, max(l.ended_on), bool_or(a.closed_at IS NOT NULL)
                 FROM (SELECT person_id, actor, ended_on FROM roles WHERE institution_id = $1
                       UNION ALL
                       SELECT contact_id, 'Kontaktperson', ended_on FROM contacts WHERE institution_id = $1) l
                 JOIN persons p ON p.id = l.person_id
                 LEFT JOIN accounts a ON a.person_id = p.id
                 WHERE p.inactive_since IS NOT NULL AND p.archived_at IS NULL AND p.erased_at IS NULL
                 GROUP BY p.id ORDER BY 4, 3, 1 LIMIT $2 OFFSET $3"
            ),
            &[&institution_id, &limit, &offset],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FormerRow {
                    person_id: r.try_get(0).map_err(db)?,
                    user_id: r.try_get(1).map_err(db)?,
                    given_name: r.try_get(2).map_err(db)?,
                    family_name: r.try_get(3).map_err(db)?,
                    actors: list(r.try_get(4).map_err(db)?),
                    inactive_since: r.try_get(5).map_err(db)?,
                    ended_on: r.try_get(6).map_err(db)?,
                    closed: r
                        .try_get::<_, Option<bool>>(7)
                        .map_err(db)?
                        .unwrap_or(false),
                })
            })
            .collect()
    }

    async fn institution_member(&self, institution_id: i64, user_id: &str) -> Result<Option<i64>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT p.id FROM persons p WHERE p.user_id = $2 AND p.inactive_since IS NULL AND (
                EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.institution_id = $1 AND r.ended_on IS NULL)
                OR EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.institution_id = $1 AND c.ended_on IS NULL))",
            &[&institution_id, &user_id],
        )
        .await?;
        rows.first().map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn grant_right(
        &self,
        institution_id: i64,
        person_id: i64,
        right: &str,
        granted_by: Option<i64>,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        audited_change(
            self,
            "INSERT INTO right_grants (institution_id, person_id, right_name, granted_by, reason, granted_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (institution_id, person_id, right_name)
             DO UPDATE SET granted_by = excluded.granted_by, reason = excluded.reason, granted_at = excluded.granted_at",
            &[&institution_id, &person_id, &right, &granted_by, &reason, &at.unix_timestamp()],
            at,
            event,
        )
        .await
        .map(drop)
    }

    async fn revoke_right(
        &self,
        institution_id: i64,
        person_id: i64,
        right: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let n = audited_change(
            self,
            "DELETE FROM right_grants WHERE institution_id = $1 AND person_id = $2 AND right_name = $3",
            &[&institution_id, &person_id, &right],
            at,
            event,
        )
        .await?;
        Ok(n > 0)
    }

    async fn municipality_institutions(
        &self,
        person_id: i64,
        right: &str,
    ) -> Result<Vec<MunicipalInstitution>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT g.municipality_code, i.id, i.number, i.name
             FROM municipality_grants g
             JOIN persons p ON p.id = g.person_id
             JOIN institutions i ON i.municipality_code = g.municipality_code
             WHERE g.person_id = $1 AND g.right_name = $2 AND p.inactive_since IS NULL
               AND EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id
                           AND r.actor = 'Medarbejder' AND r.ended_on IS NULL)
             ORDER BY g.municipality_code, i.number",
            &[&person_id, &right],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MunicipalInstitution {
                    municipality_code: r.try_get(0).map_err(db)?,
                    institution_id: r.try_get(1).map_err(db)?,
                    number: r.try_get(2).map_err(db)?,
                    name: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    async fn grant_municipality_right(
        &self,
        municipality_code: &str,
        person_id: i64,
        right: &str,
        granted_by: &str,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        audited_change(
            self,
            "INSERT INTO municipality_grants (municipality_code, person_id, right_name, granted_by, reason, granted_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (municipality_code, person_id, right_name)
             DO UPDATE SET granted_by = excluded.granted_by, reason = excluded.reason, granted_at = excluded.granted_at",
            &[&municipality_code, &person_id, &right, &granted_by, &reason, &at.unix_timestamp()],
            at,
            event,
        )
        .await
        .map(drop)
    }

    async fn revoke_municipality_right(
        &self,
        municipality_code: &str,
        person_id: i64,
        right: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let n = audited_change(
            self,
            "DELETE FROM municipality_grants WHERE municipality_code = $1 AND person_id = $2 AND right_name = $3",
            &[&municipality_code, &person_id, &right],
            at,
            event,
        )
        .await?;
        Ok(n > 0)
    }

    async fn issue_cards(
        &self,
        cards: &[(i64, [u8; 32])],
        issued_by: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<()> {
        let ids: Vec<i64> = cards.iter().map(|(id, _)| *id).collect();
        let hashes: Vec<&[u8]> = cards.iter().map(|(_, h)| &h[..]).collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        execute(
            &tx,
            "INSERT INTO login_cards (person_id, code_hash, issued_by, issued_at)
             SELECT id, hash, $3, $4 FROM unnest($1::bigint[], $2::bytea[]) AS t (id, hash)
             ON CONFLICT (person_id) DO UPDATE SET code_hash = excluded.code_hash,
                issued_by = excluded.issued_by, issued_at = excluded.issued_at",
            &[&ids, &hashes, &issued_by, &at.unix_timestamp()],
        )
        .await?;
        // A card that stops working leaves no session behind.
        execute(
            &tx,
            "DELETE FROM sessions WHERE person_id = ANY($1) AND amr = 'card'",
            &[&ids],
        )
        .await?;
        audit(&tx, at, events).await?;
        tx.commit().await.map_err(db)
    }

    async fn revoke_card(
        &self,
        person_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "DELETE FROM login_cards WHERE person_id = $1",
            &[&person_id],
        )
        .await?;
        if n > 0 {
            execute(
                &tx,
                "DELETE FROM sessions WHERE person_id = $1 AND amr = 'card'",
                &[&person_id],
            )
            .await?;
            audit(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn account_by_card(&self, code_hash: &[u8; 32]) -> Result<Option<AccountRecord>> {
        self.account_where(
            "p.id = (SELECT lc.person_id FROM login_cards lc WHERE lc.code_hash = $1)",
            &[&&code_hash[..]],
        )
        .await
    }
}
