//! The "my data" reads on PostgreSQL.

use super::audit::event_row;
use super::{db, query, PgStore};
use crate::codec::{address_from, phones_from};
use async_trait::async_trait;
use tilgang_core::audit::Event;
use tilgang_core::store::mydata::{ContactFact, GroupFact, MyDataStore, PersonFacts, RoleFact};
use tilgang_core::Result;
use tokio_postgres::Row;

const CONTACTS: &str = "SELECT i.name, p.id, p.user_id, p.given_name, p.family_name, c.relation, c.custody, c.access_level::bigint, c.ended_on::text
     FROM contacts c JOIN persons p ON p.id = c.{other} JOIN institutions i ON i.id = c.institution_id
     WHERE c.{me} = $1 ORDER BY c.ended_on IS NOT NULL, p.given_name, p.family_name, i.name";

fn contact_row(r: &Row) -> Result<ContactFact> {
    Ok(ContactFact {
        institution_name: r.try_get(0).map_err(db)?,
        other_id: r.try_get(1).map_err(db)?,
        other_user_id: r.try_get(2).map_err(db)?,
        other_given_name: r.try_get(3).map_err(db)?,
        other_family_name: r.try_get(4).map_err(db)?,
        relation: r.try_get(5).map_err(db)?,
        custody: r.try_get(6).map_err(db)?,
        access_level: r.try_get(7).map_err(db)?,
        ended_on: r.try_get(8).map_err(db)?,
    })
}

impl PgStore {
    async fn contacts(&self, person_id: i64, me: &str, other: &str) -> Result<Vec<ContactFact>> {
        let sql = CONTACTS.replace("{me}", me).replace("{other}", other);
        let rows = query(&self.conn().await?, &sql, &[&person_id]).await?;
        rows.iter().map(contact_row).collect()
    }
}

#[async_trait]
impl MyDataStore for PgStore {
    async fn person_facts(&self, person_id: i64) -> Result<Option<PersonFacts>> {
        let rows = query(
            &self.conn().await?,
            "SELECT id, user_id, given_name, family_name, birth_date::text, gender, email, phones, address,
                    cpr_enc IS NOT NULL, protected, source_system, inactive_since::text
             FROM persons WHERE id = $1",
            &[&person_id],
        )
        .await?;
        rows.first()
            .map(|r| {
                Ok(PersonFacts {
                    person_id: r.try_get(0).map_err(db)?,
                    user_id: r.try_get(1).map_err(db)?,
                    given_name: r.try_get(2).map_err(db)?,
                    family_name: r.try_get(3).map_err(db)?,
                    birth_date: r.try_get(4).map_err(db)?,
                    gender: r.try_get(5).map_err(db)?,
                    email: r.try_get(6).map_err(db)?,
                    phones: phones_from(r.try_get(7).map_err(db)?),
                    address: address_from(r.try_get(8).map_err(db)?),
                    has_cpr: r.try_get(9).map_err(db)?,
                    protected: r.try_get(10).map_err(db)?,
                    source_system: r.try_get(11).map_err(db)?,
                    inactive_since: r.try_get(12).map_err(db)?,
                })
            })
            .transpose()
    }

    async fn roles_of(&self, person_id: i64) -> Result<Vec<RoleFact>> {
        let rows = query(
            &self.conn().await?,
            "SELECT i.number, i.name, r.role, r.grade_level, r.student_number, r.main_group, r.ended_on::text
             FROM roles r JOIN institutions i ON i.id = r.institution_id
             WHERE r.person_id = $1 ORDER BY r.ended_on IS NOT NULL, i.name, r.role",
            &[&person_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoleFact {
                    institution_number: r.try_get(0).map_err(db)?,
                    institution_name: r.try_get(1).map_err(db)?,
                    role: r.try_get(2).map_err(db)?,
                    grade_level: r.try_get(3).map_err(db)?,
                    student_number: r.try_get(4).map_err(db)?,
                    main_group: r.try_get(5).map_err(db)?,
                    ended_on: r.try_get(6).map_err(db)?,
                })
            })
            .collect()
    }

    async fn groups_of(&self, person_id: i64) -> Result<Vec<GroupFact>> {
        let rows = query(
            &self.conn().await?,
            "SELECT i.name, g.name, g.kind, coalesce(m.ended_on, g.ended_on)::text
             FROM memberships m JOIN roster_groups g ON g.id = m.group_id
             JOIN institutions i ON i.id = g.institution_id
             WHERE m.person_id = $1
             ORDER BY coalesce(m.ended_on, g.ended_on) IS NOT NULL, i.name, g.name",
            &[&person_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupFact {
                    institution_name: r.try_get(0).map_err(db)?,
                    name: r.try_get(1).map_err(db)?,
                    kind: r.try_get(2).map_err(db)?,
                    ended_on: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
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
        let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query(
            &self.conn().await?,
            "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
             FROM audit_events e
             WHERE e.action = ANY($2) AND e.subjects::jsonb @> jsonb_build_array($1::bigint)
             ORDER BY e.seq DESC LIMIT $3",
            &[&person_id, &actions, &limit],
        )
        .await?;
        rows.iter().map(event_row).collect()
    }
}
