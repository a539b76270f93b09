//! The export's read path on SQLite: an institution's persons by keyset,
//! four indexed statements per page on one reader connection (WAL: the
//! writer is never blocked).

use super::{db, opt_date, person_row, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use tilgang_core::roster::*;
use tilgang_core::store::export::{ExportInstitution, ExportMembership, ExportPerson, ExportStore};
use tilgang_core::Result;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[async_trait]
impl ExportStore for SqliteStore {
    async fn export_institution(&self, number: &str) -> Result<Option<ExportInstitution>> {
        let number = number.to_owned();
        self.read(move |conn| export_institution_on(conn, &number))
            .await
    }

    async fn export_groups(&self, institution_id: i64) -> Result<Vec<Group>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT ext_id, name, kind, level, line, from_date, to_date FROM roster_groups
                     WHERE institution_id = ?1 AND ended_on IS NULL ORDER BY ext_id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([institution_id], |r| {
                    Ok(Group {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        kind: GroupKind::parse(&r.get::<_, String>(2)?).unwrap_or(GroupKind::Other),
                        level: r.get(3)?,
                        line: r.get(4)?,
                        from: opt_date(r.get(5)?),
                        to: opt_date(r.get(6)?),
                    })
                })
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db);
            rows
        })
        .await
    }

    async fn export_page(
        &self,
        institution_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportPerson>> {
        self.read(move |conn| page(conn, institution_id, after, limit))
            .await
    }
}

fn page(conn: &Connection, inst: i64, after: i64, limit: usize) -> Result<Vec<ExportPerson>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Each branch walks its own index from the cursor and stops at the
    // limit, so a page costs the same at the end of an institution as at
    // its start.
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM (
                SELECT * FROM (SELECT DISTINCT person_id AS id FROM roles
                    WHERE institution_id = ?1 AND ended_on IS NULL AND person_id > ?2 ORDER BY person_id LIMIT ?3)
                UNION
                SELECT * FROM (SELECT DISTINCT contact_id AS id FROM contacts
                    WHERE institution_id = ?1 AND ended_on IS NULL AND contact_id > ?2 ORDER BY contact_id LIMIT ?3))
             ORDER BY id LIMIT ?3",
        )
        .map_err(db)?;
    let ids: Vec<i64> = stmt
        .query_map(params![inst, after, limit], |r| r.get(0))
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    persons_at(conn, inst, &ids)
}

/// The persons `ids` (ascending) with their active roles, memberships and
/// contacts at the institution `inst`.
fn persons_at(conn: &Connection, inst: i64, ids: &[i64]) -> Result<Vec<ExportPerson>> {
    let (Some(lo), Some(hi)) = (ids.first().copied(), ids.last().copied()) else {
        return Ok(Vec::new());
    };
    let ids_json = serde_json::to_string(&ids).map_err(tilgang_core::Error::store)?;

    let mut stmt = conn
        .prepare_cached(
            "SELECT p.id, p.user_id, p.given_name, p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc, p.birth_date,
                    p.gender, p.email, p.phones, p.address, p.protected, p.source_system, p.local_person_id, p.photo_id
             FROM persons p WHERE p.id IN (SELECT value FROM json_each(?1)) ORDER BY p.id",
        )
        .map_err(db)?;
    let mut out: Vec<ExportPerson> = stmt
        .query_map([&ids_json], |r| {
            Ok(ExportPerson {
                id: r.get(0)?,
                person: person_row(r)?,
                cpr_enc: r.get(6)?,
                roles: Vec::new(),
                memberships: Vec::new(),
                contacts: Vec::new(),
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    let at: HashMap<i64, usize> = out.iter().enumerate().map(|(i, p)| (p.id, i)).collect();

    let mut stmt = conn
        .prepare_cached(
            "SELECT person_id, role, grade_level, student_number, main_group, initials, occupation FROM roles
             WHERE institution_id = ?1 AND person_id BETWEEN ?2 AND ?3 AND ended_on IS NULL ORDER BY person_id, role",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![inst, lo, hi]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let pid: i64 = r.get(0).map_err(db)?;
        let (Some(&i), Some(role)) = (
            at.get(&pid),
            RoleKind::parse(&r.get::<_, String>(1).map_err(db)?),
        ) else {
            continue;
        };
        let p = &mut out[i];
        p.roles.push(Role {
            user_id: p.person.user_id.clone(),
            role,
            grade_level: r.get(2).map_err(db)?,
            student_number: r.get(3).map_err(db)?,
            main_group: r.get(4).map_err(db)?,
            initials: r.get(5).map_err(db)?,
            occupation: r.get(6).map_err(db)?,
        });
    }

    let mut stmt = conn
        .prepare_cached(
            "SELECT m.person_id, g.ext_id, m.ended_on FROM memberships m JOIN roster_groups g ON g.id = m.group_id
             WHERE m.person_id IN (SELECT value FROM json_each(?2)) AND g.institution_id = ?1 AND g.ended_on IS NULL
             ORDER BY m.person_id, g.ext_id",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![inst, &ids_json]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let pid: i64 = r.get(0).map_err(db)?;
        if let Some(&i) = at.get(&pid) {
            out[i].memberships.push(ExportMembership {
                group: r.get(1).map_err(db)?,
                ended_on: opt_date(r.get(2).map_err(db)?),
            });
        }
    }

    let mut stmt = conn
        .prepare_cached(
            "SELECT c.pupil_id, c.contact_id, pp.user_id, cp.user_id, c.relation, c.custody, c.access_level FROM contacts c
             JOIN persons pp ON pp.id = c.pupil_id JOIN persons cp ON cp.id = c.contact_id
             WHERE c.institution_id = ?1 AND c.ended_on IS NULL
               AND (c.pupil_id BETWEEN ?2 AND ?3 OR c.contact_id BETWEEN ?2 AND ?3)
             ORDER BY pp.user_id, cp.user_id",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![inst, lo, hi]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let rel = ContactRelation {
            pupil: r.get(2).map_err(db)?,
            contact: r.get(3).map_err(db)?,
            relation: Relation::parse(&r.get::<_, String>(4).map_err(db)?)
                .unwrap_or(Relation::Other),
            custody: r.get(5).map_err(db)?,
            access_level: r.get(6).map_err(db)?,
        };
        for pid in [
            r.get::<_, i64>(0).map_err(db)?,
            r.get::<_, i64>(1).map_err(db)?,
        ] {
            if let Some(&i) = at.get(&pid) {
                out[i].contacts.push(rel.clone());
            }
        }
    }
    Ok(out)
}

pub(super) fn export_institution_on(
    conn: &Connection,
    number: &str,
) -> Result<Option<ExportInstitution>> {
    conn.cached_row(
        "SELECT id, number, name, kind, municipality_code, source_system, school_year, import_digest, updated_at
         FROM institutions WHERE number = ?1",
        [number],
        |r| {
            let updated: String = r.get(8)?;
            Ok(ExportInstitution {
                id: r.get(0)?,
                institution: Institution {
                    number: r.get(1)?,
                    name: r.get(2)?,
                    kind: InstitutionKind::parse(&r.get::<_, String>(3)?)
                        .unwrap_or(InstitutionKind::Other),
                    municipality_code: r.get(4)?,
                },
                source_system: r.get(5)?,
                school_year: r.get(6)?,
                import_digest: r.get(7)?,
                updated_at: OffsetDateTime::parse(&updated, &Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .unwrap_or_default(),
            })
        },
    )
    .optional()
    .map_err(db)
}

/// One person at the institution as [`page`] reads them.
pub(super) fn export_person_on(
    conn: &Connection,
    institution_id: i64,
    person_id: i64,
) -> Result<Option<ExportPerson>> {
    // The page's own id query, for one id: a lookup at login pays no
    // union of two index walks for it.
    let listed: bool = conn
        .cached_row(
            "SELECT EXISTS (SELECT 1 FROM roles WHERE institution_id = ?1 AND person_id = ?2 AND ended_on IS NULL)
                 OR EXISTS (SELECT 1 FROM contacts WHERE institution_id = ?1 AND contact_id = ?2 AND ended_on IS NULL)",
            params![institution_id, person_id],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !listed {
        return Ok(None);
    }
    Ok(persons_at(conn, institution_id, &[person_id])?.pop())
}
