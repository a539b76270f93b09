//! Security reports as operators handle them: read (newest first) and
//! acknowledge. Both take the [`Operator`] capability; the reports
//! themselves arrive through `web::security` and `store::reports`.

use crate::audit::{actions, NewEvent};
use crate::identity::rights::Operator;
use crate::store::reports::Report;
use crate::store::Store;
use crate::{Clock, Result};

/// Every report, newest first.
pub async fn reports(store: &dyn Store, _cap: &Operator) -> Result<Vec<Report>> {
    store.reports().await
}

/// What acknowledging a report came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledged {
    /// Marked now (with a `security.report_acknowledged` event): tell the
    /// reporter.
    Now(Report),
    /// An operator acknowledged it before; nothing written.
    Already,
    NotFound,
}

/// Marks report `id` acknowledged by the operator, audited in the same
/// transaction (the event carries the reference, never the content).
pub async fn acknowledge(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &Operator,
    id: i64,
) -> Result<Acknowledged> {
    let actor = cap.actor_ref();
    let ev = NewEvent::new(actor.clone(), actions::SECURITY_REPORT_ACKNOWLEDGED);
    if let Some(r) = store
        .acknowledge_report(id, &actor, clock.now(), ev)
        .await?
    {
        return Ok(Acknowledged::Now(r));
    }
    Ok(if store.reports().await?.iter().any(|r| r.id == id) {
        Acknowledged::Already
    } else {
        Acknowledged::NotFound
    })
}
