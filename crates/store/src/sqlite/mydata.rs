//! The "my data" reads on SQLite.

use super::{db, event_row, CachedRow, SqliteStore};
use crate::codec::{address_from, phones_from};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use tilgang_core::audit::Event;
use tilgang_core::store::mydata::{ContactFact, GroupFact, MyDataStore, PersonFacts, RoleFact};
use tilgang_core::{Error, Result};

const CONTACTS: &str = "SELECT i.name, p.id, p.user_id, p.given_name, p.family_name, c.relation, c.custody, c.access_level, c.ended_on
     FROM contacts c JOIN persons p ON p.id = c.{other} JOIN institutions i ON i.id = c.institution_id
     WHERE c.{me} = ?1 ORDER BY c.ended_on IS NOT NULL, p.given_name, p.family_name, i.name";

fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactFact> {
    Ok(ContactFact {
        institution_name: r.get(0)?,
        other_id: r.get(1)?,
        other_user_id: r.get(2)?,
        other_given_name: r.get(3)?,
        other_family_name: r.get(4)?,
        relation: r.get(5)?,
        custody: r.get(6)?,
        access_level: r.get(7)?,
        ended_on: r.get(8)?,
    })
}

impl SqliteStore {
    async fn contacts(&self, person_id: i64, me: &str, other: &str) -> Result<Vec<ContactFact>> {
        let sql = CONTACTS.replace("{me}", me).replace("{other}", other);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt.query_map([person_id], contact_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }
}

#[async_trait]
impl MyDataStore for SqliteStore {
    async fn person_facts(&self, person_id: i64) -> Result<Option<PersonFacts>> {
        self.read(move |conn| {
            conn.cached_row(
                "SELECT id, user_id, given_name, family_name, birth_date, gender, email, phones, address,
                        cpr_enc IS NOT NULL, protected, source_system, inactive_since
                 FROM persons WHERE id = ?1",
                [person_id],
                |r| {
                    Ok(PersonFacts {
                        person_id: r.get(0)?,
                        user_id: r.get(1)?,
                        given_name: r.get(2)?,
                        family_name: r.get(3)?,
                        birth_date: r.get(4)?,
                        gender: r.get(5)?,
                        email: r.get(6)?,
                        phones: phones_from(r.get(7)?),
                        address: address_from(r.get(8)?),
                        has_cpr: r.get(9)?,
                        protected: r.get(10)?,
                        source_system: r.get(11)?,
                        inactive_since: r.get(12)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn roles_of(&self, person_id: i64) -> Result<Vec<RoleFact>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.number, i.name, r.role, r.grade_level, r.student_number, r.main_group, r.ended_on
                     FROM roles r JOIN institutions i ON i.id = r.institution_id
                     WHERE r.person_id = ?1 ORDER BY r.ended_on IS NOT NULL, i.name, r.role",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([person_id], |r| {
                    Ok(RoleFact {
                        institution_number: r.get(0)?,
                        institution_name: r.get(1)?,
                        role: r.get(2)?,
                        grade_level: r.get(3)?,
                        student_number: r.get(4)?,
                        main_group: r.get(5)?,
                        ended_on: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn groups_of(&self, person_id: i64) -> Result<Vec<GroupFact>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.name, g.name, g.kind, coalesce(m.ended_on, g.ended_on)
                     FROM memberships m JOIN roster_groups g ON g.id = m.group_id
                     JOIN institutions i ON i.id = g.institution_id
                     WHERE m.person_id = ?1
                     ORDER BY coalesce(m.ended_on, g.ended_on) IS NOT NULL, i.name, g.name",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([person_id], |r| {
                    Ok(GroupFact {
                        institution_name: r.get(0)?,
                        name: r.get(1)?,
                        kind: r.get(2)?,
                        ended_on: r.get(3)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn contacts_of_pupil(&self, person_id: i64) -> Result<Vec<ContactFact>> {
        self.contacts(person_id, "pupil_id", "contact_id").await
    }

    async fn pupils_of_contact(&self, person_id: i64) -> Result<Vec<ContactFact>> {
        self.contacts(person_id, "contact_id", "pupil_id").await
    }

    async fn events_about(
        &self,
        person_id: i64,
        actions: &[&str],
        limit: usize,
    ) -> Result<Vec<Event>> {
        let actions = serde_json::to_string(actions).map_err(Error::store)?;
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
                     FROM audit_events e
                     WHERE e.action IN (SELECT value FROM json_each(?2))
                       AND EXISTS (SELECT 1 FROM json_each(e.subjects) j WHERE j.value = ?1)
                     ORDER BY e.seq DESC LIMIT ?3",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![person_id, actions, limit as i64], event_row)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }
}
