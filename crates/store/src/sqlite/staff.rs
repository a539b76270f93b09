//! Staff standing, pupil and employee lists, right grants and login cards
//! on SQLite.

use super::identity::{account_row, audit, ACCOUNT};
use super::{db, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};
use tilgang_core::audit::NewEvent;
use tilgang_core::roster::RoleKind;
use tilgang_core::store::staff::{
    EmployeeRow, FormerRow, MunicipalInstitution, PupilRow, StaffStanding, StaffStore,
};
use tilgang_core::store::AccountRecord;
use tilgang_core::Result;
use time::OffsetDateTime;

fn list(s: Option<String>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn roles(s: Option<String>) -> Vec<RoleKind> {
    list(s).iter().filter_map(|r| RoleKind::parse(r)).collect()
}

/// Names as everybody but authorities may see them.
const NAMES: &str =
    "CASE WHEN p.protected AND p.alias_given_name IS NOT NULL THEN p.alias_given_name ELSE p.given_name END,
     CASE WHEN p.protected AND p.alias_family_name IS NOT NULL THEN p.alias_family_name ELSE p.family_name END";

/// A card that stops working leaves no session behind.
fn end_card_sessions(conn: &rusqlite::Connection, person_id: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM sessions WHERE person_id = ?1 AND amr = 'card'",
        [person_id],
    )
    .map_err(db)
    .map(drop)
}

impl SqliteStore {
    /// One statement and, when it changed a row, its audit event, in one
    /// transaction (a grant or a revocation); the number of rows changed.
    pub(super) async fn audited_change(
        &self,
        sql: &'static str,
        params: Vec<Value>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<usize> {
        self.write(move |conn| {
            let n = conn
                .execute(sql, rusqlite::params_from_iter(params))
                .map_err(db)?;
            if n > 0 {
                audit(conn, at, vec![event])?;
            }
            Ok(n)
        })
        .await
    }
}

#[async_trait]
impl StaffStore for SqliteStore {
    async fn staff_standing(&self, person_id: i64) -> Result<Vec<StaffStanding>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.id, i.number, i.name, group_concat(DISTINCT r.role),
                        (SELECT group_concat(g.right_name) FROM right_grants g
                         WHERE g.institution_id = i.id AND g.person_id = ?1)
                     FROM roles r JOIN institutions i ON i.id = r.institution_id JOIN persons p ON p.id = r.person_id
                     WHERE r.person_id = ?1 AND r.actor = 'Medarbejder' AND r.ended_on IS NULL
                       AND p.inactive_since IS NULL
                     GROUP BY i.id, i.number, i.name",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([person_id], |r| {
                    Ok(StaffStanding {
                        institution_id: r.get(0)?,
                        number: r.get(1)?,
                        name: r.get(2)?,
                        roles: roles(r.get(3)?),
                        granted: list(r.get(4)?),
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn institution_pupils(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<PupilRow>> {
        let user_id = user_id.map(str::to_owned);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT p.id, p.user_id, {NAMES}, g.ext_id, g.name,
                        a.password_hash IS NOT NULL, a.locked_until, c.person_id IS NOT NULL
                     FROM roles r
                     JOIN persons p ON p.id = r.person_id
                     LEFT JOIN roster_groups g ON g.institution_id = r.institution_id AND g.ext_id = r.main_group
                       AND g.ended_on IS NULL
                     LEFT JOIN accounts a ON a.person_id = p.id
                     LEFT JOIN login_cards c ON c.person_id = p.id
                     WHERE r.institution_id = ?1 AND r.actor = 'Elev' AND r.ended_on IS NULL
                       AND p.inactive_since IS NULL AND (?2 IS NULL OR p.user_id = ?2)"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![institution_id, user_id], |r| {
                    Ok(PupilRow {
                        person_id: r.get(0)?,
                        user_id: r.get(1)?,
                        given_name: r.get(2)?,
                        family_name: r.get(3)?,
                        class_id: r.get(4)?,
                        class: r.get(5)?,
                        has_password: r.get(6)?,
                        locked_until: r.get(7)?,
                        has_card: r.get(8)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn institution_employees(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<EmployeeRow>> {
        let user_id = user_id.map(str::to_owned);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT p.id, p.user_id, {NAMES}, group_concat(DISTINCT r.role),
                        (SELECT group_concat(g.right_name) FROM right_grants g
                         WHERE g.institution_id = ?1 AND g.person_id = p.id),
                        a.locked_until
                     FROM roles r
                     JOIN persons p ON p.id = r.person_id
                     LEFT JOIN accounts a ON a.person_id = p.id
                     WHERE r.institution_id = ?1 AND r.actor = 'Medarbejder' AND r.ended_on IS NULL
                       AND p.inactive_since IS NULL AND (?2 IS NULL OR p.user_id = ?2)
                     GROUP BY p.id"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![institution_id, user_id], |r| {
                    Ok(EmployeeRow {
                        person_id: r.get(0)?,
                        user_id: r.get(1)?,
                        given_name: r.get(2)?,
                        family_name: r.get(3)?,
                        roles: roles(r.get(4)?),
                        granted: list(r.get(5)?),
                        locked_until: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn former_persons(
        &self,
        institution_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FormerRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT p.id, p.user_id, {NAMES}, group_concat(DISTINCT l.actor),
                        p.inactive_since, max(l.ended_on), a.closed_at IS NOT NULL
                     FROM (SELECT person_id, actor, ended_on FROM roles WHERE institution_id = ?1
                           UNION ALL
                           SELECT contact_id, 'Kontaktperson', ended_on FROM contacts WHERE institution_id = ?1) l
                     JOIN persons p ON p.id = l.person_id
                     LEFT JOIN accounts a ON a.person_id = p.id
                     WHERE p.inactive_since IS NOT NULL AND p.archived_at IS NULL AND p.erased_at IS NULL
                     GROUP BY p.id ORDER BY 4, 3, 1 LIMIT ?2 OFFSET ?3"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![institution_id, limit as i64, offset as i64], |r| {
                    let actors: Option<String> = r.get(4)?;
                    let mut actors: Vec<String> = actors
                        .unwrap_or_default()
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect();
                    actors.sort();
                    Ok(FormerRow {
                        person_id: r.get(0)?,
                        user_id: r.get(1)?,
                        given_name: r.get(2)?,
                        family_name: r.get(3)?,
                        actors,
                        inactive_since: super::opt_date(r.get(5)?),
                        ended_on: super::opt_date(r.get(6)?),
                        closed: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn institution_member(&self, institution_id: i64, user_id: &str) -> Result<Option<i64>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            conn.cached_row(
                "SELECT p.id FROM persons p WHERE p.user_id = ?2 AND p.inactive_since IS NULL AND (
                    EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.institution_id = ?1 AND r.ended_on IS NULL)
                    OR EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.institution_id = ?1 AND c.ended_on IS NULL))",
                params![institution_id, user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
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
        let params = vec![
            Value::from(institution_id),
            Value::from(person_id),
            Value::from(right.to_owned()),
            Value::from(granted_by),
            Value::from(reason.to_owned()),
            Value::from(at.unix_timestamp()),
        ];
        self.audited_change(
            "INSERT INTO right_grants (institution_id, person_id, right_name, granted_by, reason, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (institution_id, person_id, right_name)
             DO UPDATE SET granted_by = excluded.granted_by, reason = excluded.reason, granted_at = excluded.granted_at",
            params,
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
        let params = vec![
            Value::from(institution_id),
            Value::from(person_id),
            Value::from(right.to_owned()),
        ];
        let n = self
            .audited_change(
                "DELETE FROM right_grants WHERE institution_id = ?1 AND person_id = ?2 AND right_name = ?3",
                params,
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
        let right = right.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT g.municipality_code, i.id, i.number, i.name
                     FROM municipality_grants g
                     JOIN persons p ON p.id = g.person_id
                     JOIN institutions i ON i.municipality_code = g.municipality_code
                     WHERE g.person_id = ?1 AND g.right_name = ?2 AND p.inactive_since IS NULL
                       AND EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id
                                   AND r.actor = 'Medarbejder' AND r.ended_on IS NULL)
                     ORDER BY g.municipality_code, i.number",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![person_id, right], |r| {
                    Ok(MunicipalInstitution {
                        municipality_code: r.get(0)?,
                        institution_id: r.get(1)?,
                        number: r.get(2)?,
                        name: r.get(3)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
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
        let params = vec![
            Value::from(municipality_code.to_owned()),
            Value::from(person_id),
            Value::from(right.to_owned()),
            Value::from(granted_by.to_owned()),
            Value::from(reason.to_owned()),
            Value::from(at.unix_timestamp()),
        ];
        self.audited_change(
            "INSERT INTO municipality_grants (municipality_code, person_id, right_name, granted_by, reason, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (municipality_code, person_id, right_name)
             DO UPDATE SET granted_by = excluded.granted_by, reason = excluded.reason, granted_at = excluded.granted_at",
            params,
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
        let params = vec![
            Value::from(municipality_code.to_owned()),
            Value::from(person_id),
            Value::from(right.to_owned()),
        ];
        let n = self
            .audited_change(
                "DELETE FROM municipality_grants WHERE municipality_code = ?1 AND person_id = ?2 AND right_name = ?3",
                params,
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
        let cards = cards.to_vec();
        let issued_by = issued_by.to_owned();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO login_cards (person_id, code_hash, issued_by, issued_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (person_id) DO UPDATE SET code_hash = excluded.code_hash,
                        issued_by = excluded.issued_by, issued_at = excluded.issued_at",
                )
                .map_err(db)?;
            for (person_id, hash) in &cards {
                stmt.execute(params![person_id, &hash[..], issued_by, at.unix_timestamp()])
                    .map_err(db)?;
                end_card_sessions(conn, *person_id)?;
            }
            audit(conn, at, events)
        })
        .await
    }

    async fn revoke_card(
        &self,
        person_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM login_cards WHERE person_id = ?1", [person_id])
                .map_err(db)?;
            if n > 0 {
                end_card_sessions(conn, person_id)?;
                audit(conn, at, vec![event])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn account_by_card(&self, code_hash: &[u8; 32]) -> Result<Option<AccountRecord>> {
        let code_hash = code_hash.to_vec();
        self.read(move |conn| {
            conn.cached_row(
                &format!(
                    "{ACCOUNT} WHERE p.id = (SELECT c.person_id FROM login_cards c WHERE c.code_hash = ?1)"
                ),
                [code_hash],
                account_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }
}
