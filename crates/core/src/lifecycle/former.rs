//! The "former persons" an institution's admins see: persons the roster
//! no longer delivers (inactive from their end date) until they are
//! archived, after which only operators see them.

use crate::audit::{actions, NewEvent};
use crate::identity::rights::InstitutionAdmin;
use crate::store::staff::FormerRow;
use crate::store::Store;
use crate::{Clock, Result};
use serde_json::json;

/// Persons on one page.
pub const PAGE: usize = 50;

/// Page `page` (from 0) of the admin's institution's former persons, and
/// whether there is a next one. Showing them is a read of personal data:
/// audited as `staff.former_listed` naming every person shown.
pub async fn former(
    store: &dyn Store,
    clock: &dyn Clock,
    admin: &InstitutionAdmin,
    page: usize,
) -> Result<(Vec<FormerRow>, bool)> {
    let access = admin.access();
    let mut rows = store
        .former_persons(access.institution_id(), page.saturating_mul(PAGE), PAGE + 1)
        .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let ev = NewEvent::new(access.actor_ref(), actions::STAFF_FORMER_LISTED)
        .institution(access.number().to_owned())
        .subjects(rows.iter().map(|r| r.person_id).collect())
        .details(json!({"page": page}));
    store.append_audit(clock.now(), vec![ev]).await?;
    Ok((rows, more))
}
