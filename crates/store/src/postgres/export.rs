//! The export's read path on PostgreSQL: an institution's persons by
//! keyset; the page's ids first, then its persons, roles, memberships and
//! contact relations pipelined on one connection (one wait).

use super::{db, person_row, query, Param, PgStore};
use async_trait::async_trait;
use std::collections::HashMap;
use tilgang_core::roster::*;
use tilgang_core::store::export::{ExportInstitution, ExportMembership, ExportPerson, ExportStore};
use tilgang_core::Result;

#[async_trait]
impl ExportStore for PgStore {
    async fn export_institution(&self, number: &str) -> Result<Option<ExportInstitution>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT id, number, name, kind, municipality_code, source_system, school_year, import_digest,
                    extract(epoch FROM updated_at)::bigint
             FROM institutions WHERE number = $1",
            &[&number],
        )
        .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(ExportInstitution {
            id: r.try_get(0).map_err(db)?,
            institution: Institution {
                number: r.try_get(1).map_err(db)?,
                name: r.try_get(2).map_err(db)?,
                kind: InstitutionKind::parse(r.try_get(3).map_err(db)?)
                    .unwrap_or(InstitutionKind::Other),
                municipality_code: r.try_get(4).map_err(db)?,
            },
            source_system: r.try_get(5).map_err(db)?,
            school_year: r.try_get(6).map_err(db)?,
            import_digest: r.try_get(7).map_err(db)?,
            updated_at: r.try_get(8).map_err(db)?,
        }))
    }

    async fn export_groups(&self, institution_id: i64) -> Result<Vec<Group>> {
        let c = self.conn().await?;
        query(
            &c,
            "SELECT ext_id, name, kind, level, line, from_date, to_date FROM roster_groups
             WHERE institution_id = $1 AND ended_on IS NULL ORDER BY ext_id COLLATE \"C\"",
            &[&institution_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Group {
                id: r.try_get(0).map_err(db)?,
                name: r.try_get(1).map_err(db)?,
                kind: GroupKind::parse(r.try_get(2).map_err(db)?).unwrap_or(GroupKind::Other),
                level: r.try_get(3).map_err(db)?,
                line: r.try_get(4).map_err(db)?,
                from: r.try_get(5).map_err(db)?,
                to: r.try_get(6).map_err(db)?,
            })
        })
        .collect()
    }

    async fn export_page(
        &self,
        institution_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportPerson>> {
        let c = self.conn().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Each branch walks its own index from the cursor and stops at the
        // limit.
        let ids: Vec<i64> = query(
            &c,
            "SELECT id FROM (
                (SELECT DISTINCT person_id AS id FROM roles
                    WHERE institution_id = $1 AND ended_on IS NULL AND person_id > $2 ORDER BY person_id LIMIT $3)
                UNION
                (SELECT contact_id FROM contacts
                    WHERE institution_id = $1 AND ended_on IS NULL AND contact_id > $2 ORDER BY contact_id LIMIT $3)) u
             ORDER BY id LIMIT $3",
            &[&institution_id, &after, &limit],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0).map_err(db))
        .collect::<Result<_>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let p: [Param<'_>; 2] = [&institution_id, &ids];
        let (persons, roles, memberships, contacts) = futures_util::try_join!(
            query(
                &c,
                "SELECT p.id, p.user_id, p.given_name, p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc, p.birth_date,
                        p.gender, p.email, p.phones, p.address, p.protected, p.source_system, p.local_person_id, p.photo_id
                 FROM persons p WHERE p.id = ANY($1) ORDER BY p.id",
                &p[1..],
            ),
            query(
                &c,
                "SELECT person_id, role, grade_level, student_number, main_group, initials, occupation FROM roles
                 WHERE institution_id = $1 AND person_id = ANY($2) AND ended_on IS NULL ORDER BY person_id, role COLLATE \"C\"",
                &p,
            ),
            query(
                &c,
                "SELECT m.person_id, g.ext_id, m.ended_on FROM memberships m JOIN roster_groups g ON g.id = m.group_id
                 WHERE m.person_id = ANY($2) AND g.institution_id = $1 AND g.ended_on IS NULL
                 ORDER BY m.person_id, g.ext_id COLLATE \"C\"",
                &p,
            ),
            query(
                &c,
                "SELECT c.pupil_id, c.contact_id, pp.user_id, cp.user_id, c.relation, c.custody, c.access_level FROM contacts c
                 JOIN persons pp ON pp.id = c.pupil_id JOIN persons cp ON cp.id = c.contact_id
                 WHERE c.institution_id = $1 AND c.ended_on IS NULL AND (c.pupil_id = ANY($2) OR c.contact_id = ANY($2))
                 ORDER BY pp.user_id COLLATE \"C\", cp.user_id COLLATE \"C\"",
                &p,
            ),
        )?;
        let mut out = persons
            .iter()
            .map(|r| {
                Ok(ExportPerson {
                    id: r.try_get(0).map_err(db)?,
                    person: person_row(r)?,
                    cpr_enc: r.try_get(6).map_err(db)?,
                    roles: Vec::new(),
                    memberships: Vec::new(),
                    contacts: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let at: HashMap<i64, usize> = out.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        for r in &roles {
            let pid: i64 = r.try_get(0).map_err(db)?;
            let (Some(&i), Some(role)) = (at.get(&pid), RoleKind::parse(r.try_get(1).map_err(db)?))
            else {
                continue;
            };
            let p = &mut out[i];
            p.roles.push(Role {
                user_id: p.person.user_id.clone(),
                role,
                grade_level: r.try_get(2).map_err(db)?,
                student_number: r.try_get(3).map_err(db)?,
                main_group: r.try_get(4).map_err(db)?,
                initials: r.try_get(5).map_err(db)?,
                occupation: r.try_get(6).map_err(db)?,
            });
        }
        for r in &memberships {
            let pid: i64 = r.try_get(0).map_err(db)?;
            if let Some(&i) = at.get(&pid) {
                out[i].memberships.push(ExportMembership {
                    group: r.try_get(1).map_err(db)?,
                    ended_on: r.try_get(2).map_err(db)?,
                });
            }
        }
        for r in &contacts {
            let rel = ContactRelation {
                pupil: r.try_get(2).map_err(db)?,
                contact: r.try_get(3).map_err(db)?,
                relation: Relation::parse(r.try_get(4).map_err(db)?).unwrap_or(Relation::Other),
                custody: r.try_get(5).map_err(db)?,
                access_level: r
                    .try_get::<_, Option<i16>>(6)
                    .map_err(db)?
                    .and_then(|l| u8::try_from(l).ok()),
            };
            for col in [0, 1] {
                let pid: i64 = r.try_get(col).map_err(db)?;
                if let Some(&i) = at.get(&pid) {
                    out[i].contacts.push(rel.clone());
                }
            }
        }
        Ok(out)
    }
}

/// The data API's reads, as the per-area reads compose them (the default
/// methods).
impl tilgang_core::store::api::ApiStore for PgStore {}
