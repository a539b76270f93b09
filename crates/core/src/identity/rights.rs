//! Staff rights, computed at request time from the roster: the right to
//! reset pupils' passwords at an institution (`pupil_reset`), being an
//! institution admin there, and being a municipality admin (an admin of
//! every institution of a municipality). Handlers get a capability
//! ([`PupilReset`], [`InstitutionAdmin`], [`MunicipalityAdmin`]), and the
//! functions that act on a person take it: a person outside its
//! institutions is simply not found.

use crate::audit::actions;
use crate::audit::NewEvent;
use crate::identity::login::{self, LoginConfig};
use crate::roster::RoleKind;
use crate::store::staff::{EmployeeRow, PupilRow, StaffStanding};
use crate::store::Store;
use crate::{Clock, Result};
use serde_json::json;

/// The right to see an institution's pupils, issue them activation codes,
/// unlock them and print their login cards; nothing else.
pub const PUPIL_RESET: &str = "pupil_reset";

/// Employee roles that carry [`PUPIL_RESET`] by themselves: the people who
/// work with the children every day, and the leadership. A substitute
/// (Vikar) or consultant (Konsulent) needs an explicit grant.
pub const RESET_ROLES: &[RoleKind] = &[
    RoleKind::Teacher,
    RoleKind::Pedagogue,
    RoleKind::Leader,
    RoleKind::Management,
];

/// Employee roles that make a person an institution admin: they may grant
/// and revoke [`PUPIL_RESET`] and unlock any person of the institution.
pub const ADMIN_ROLES: &[RoleKind] = &[RoleKind::Leader, RoleKind::Management];

/// A right only an operator grants (for the municipality, which owns the
/// schools): being an institution admin there without a leader's role in
/// the roster, e.g. a deputy or the school secretary who decides on data
/// access agreements.
pub const INSTITUTION_ADMIN: &str = "institution_admin";

/// Being an operator on the web: reading and acknowledging security
/// reports. Granted only through the CLI, and not tied to an institution.
pub const OPERATOR: &str = "operator";

/// The rights an operator may grant at an institution (and [`OPERATOR`],
/// tied to none).
pub const GRANTABLE: &[&str] = &[PUPIL_RESET, INSTITUTION_ADMIN, OPERATOR];

/// A right only an operator grants, for a municipality (by its code): the
/// holder is an institution admin of every institution of the municipality
/// and decides data access requests for all of them at once.
pub const MUNICIPALITY_ADMIN: &str = "municipality_admin";

/// The rights an operator may grant for a municipality.
pub const MUNICIPALITY_GRANTABLE: &[&str] = &[MUNICIPALITY_ADMIN];

/// Longest reason kept with a grant.
pub const REASON_MAX: usize = 200;

/// What a person may do at one institution (only institutions where they
/// hold at least the reset right are ever built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccess {
    person_id: i64,
    institution_id: i64,
    number: String,
    name: String,
    admin: bool,
}

/// Capability: the holder has [`PUPIL_RESET`] at this institution.
#[derive(Debug, Clone)]
pub struct PupilReset(StaffAccess);

/// Capability: the holder is an institution admin here.
#[derive(Debug, Clone)]
pub struct InstitutionAdmin(StaffAccess);

impl StaffAccess {
    /// The institution's number.
    pub fn number(&self) -> &str {
        &self.number
    }
    /// The institution's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn is_admin(&self) -> bool {
        self.admin
    }
    pub fn pupil_reset(&self) -> PupilReset {
        PupilReset(self.clone())
    }
    pub fn admin(&self) -> Option<InstitutionAdmin> {
        self.admin.then(|| InstitutionAdmin(self.clone()))
    }
    pub(crate) fn actor(&self) -> String {
        format!("person:{}", self.person_id)
    }
    pub(crate) fn institution_id(&self) -> i64 {
        self.institution_id
    }
    /// The holder as an audit actor (`person:<id>`).
    pub fn actor_ref(&self) -> String {
        self.actor()
    }
}

impl PupilReset {
    pub fn access(&self) -> &StaffAccess {
        &self.0
    }
}

impl InstitutionAdmin {
    pub fn access(&self) -> &StaffAccess {
        &self.0
    }
}

/// Capability: the holder is a municipality admin of the municipality with
/// this code, and so an institution admin of each of its institutions.
#[derive(Debug, Clone)]
pub struct MunicipalityAdmin {
    person_id: i64,
    code: String,
    /// By number; each with admin standing.
    institutions: Vec<StaffAccess>,
}

impl MunicipalityAdmin {
    /// The municipality's code.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The municipality's institutions, by number.
    pub fn institutions(&self) -> &[StaffAccess] {
        &self.institutions
    }
    /// Whether institution `number` is one of the municipality's.
    pub fn covers(&self, number: &str) -> bool {
        self.institutions.iter().any(|a| a.number == number)
    }
    /// The admin capability at one of the municipality's institutions.
    pub fn at(&self, number: &str) -> Option<InstitutionAdmin> {
        self.institutions
            .iter()
            .find(|a| a.number == number)
            .and_then(StaffAccess::admin)
    }
    /// The holder as an audit actor (`person:<id>`).
    pub fn actor_ref(&self) -> String {
        format!("person:{}", self.person_id)
    }
}

/// The municipalities where the person is a municipality admin, by code
/// (only municipalities with at least one institution).
pub async fn municipalities(store: &dyn Store, person_id: i64) -> Result<Vec<MunicipalityAdmin>> {
    let mut out: Vec<MunicipalityAdmin> = Vec::new();
    for m in store
        .municipality_institutions(person_id, MUNICIPALITY_ADMIN)
        .await?
    {
        let access = StaffAccess {
            person_id,
            institution_id: m.institution_id,
            number: m.number,
            name: m.name,
            admin: true,
        };
        match out.last_mut() {
            Some(last) if last.code == m.municipality_code => last.institutions.push(access),
            _ => out.push(MunicipalityAdmin {
                person_id,
                code: m.municipality_code,
                institutions: vec![access],
            }),
        }
    }
    Ok(out)
}

/// The municipality admin capability for municipality `code`, if held.
pub async fn municipality_admin(
    store: &dyn Store,
    person_id: i64,
    code: &str,
) -> Result<Option<MunicipalityAdmin>> {
    Ok(municipalities(store, person_id)
        .await?
        .into_iter()
        .find(|m| m.code == code))
}

fn access_of(person_id: i64, s: StaffStanding) -> Option<StaffAccess> {
    let admin = s.roles.iter().any(|r| ADMIN_ROLES.contains(r))
        || s.granted.iter().any(|g| g == INSTITUTION_ADMIN);
    let reset = admin
        || s.roles.iter().any(|r| RESET_ROLES.contains(r))
        || s.granted.iter().any(|g| g == PUPIL_RESET);
    reset.then_some(StaffAccess {
        person_id,
        institution_id: s.institution_id,
        number: s.number,
        name: s.name,
        admin,
    })
}

/// The institutions where the person holds a right, by institution number:
/// from their roles and grants there, and as a municipality admin (an
/// admin at every institution of the municipality).
pub async fn standing(store: &dyn Store, person_id: i64) -> Result<Vec<StaffAccess>> {
    let mut out: Vec<StaffAccess> = store
        .staff_standing(person_id)
        .await?
        .into_iter()
        .filter_map(|s| access_of(person_id, s))
        .collect();
    for m in municipalities(store, person_id).await? {
        merge_admin(&mut out, m.institutions);
    }
    out.sort_by(|a, b| a.number.cmp(&b.number));
    Ok(out)
}

/// Adds admin standing at `institutions` to `out`, raising an access the
/// person already has there rather than listing the institution twice.
fn merge_admin(out: &mut Vec<StaffAccess>, institutions: Vec<StaffAccess>) {
    for a in institutions {
        match out
            .iter_mut()
            .find(|o| o.institution_id == a.institution_id)
        {
            Some(o) => o.admin = true,
            None => out.push(a),
        }
    }
}

/// The person's access at the institution with this number, if any.
pub async fn access_at(
    store: &dyn Store,
    person_id: i64,
    number: &str,
) -> Result<Option<StaffAccess>> {
    Ok(standing(store, person_id)
        .await?
        .into_iter()
        .find(|a| a.number == number))
}

/// How a pupil's account stands, for the staff page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    NotActivated,
    Active,
    Locked,
}

pub fn state_of(has_password: bool, locked_until: Option<i64>, now: i64) -> AccountState {
    if locked_until.is_some_and(|t| t > now) {
        AccountState::Locked
    } else if has_password {
        AccountState::Active
    } else {
        AccountState::NotActivated
    }
}

fn sort_pupils(pupils: &mut Vec<PupilRow>) {
    pupils.sort_by(|a, b| {
        (&a.class, &a.given_name, &a.family_name, &a.user_id).cmp(&(
            &b.class,
            &b.given_name,
            &b.family_name,
            &b.user_id,
        ))
    });
    pupils.dedup_by_key(|p| p.person_id);
}

/// A class as the filter offers it: id in the source system, and name.
pub type ClassRef = (String, String);

/// The institution's classes (of active pupils), and its active pupils in
/// `class` (all when `None`), by class and name. Listing them is a read of
/// personal data, so it is audited (`staff.pupils_listed`).
pub async fn pupils(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &PupilReset,
    class: Option<&str>,
) -> Result<(Vec<ClassRef>, Vec<PupilRow>)> {
    let mut rows = store.institution_pupils(cap.0.institution_id, None).await?;
    sort_pupils(&mut rows);
    let mut classes: Vec<ClassRef> = rows
        .iter()
        .filter_map(|p| Some((p.class_id.clone()?, p.class.clone()?)))
        .collect();
    classes.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    classes.dedup();
    if let Some(c) = class {
        rows.retain(|p| p.class_id.as_deref() == Some(c));
    }
    let ev = NewEvent::new(cap.0.actor(), actions::STAFF_PUPILS_LISTED)
        .institution(cap.0.number.clone())
        .subjects(rows.iter().map(|p| p.person_id).collect())
        .details(json!({"class": class}));
    store.append_audit(clock.now(), vec![ev]).await?;
    Ok((classes, rows))
}

/// One active pupil of the capability's institution; `None` for anyone
/// else, wherever they are.
pub async fn pupil(store: &dyn Store, cap: &PupilReset, user_id: &str) -> Result<Option<PupilRow>> {
    Ok(store
        .institution_pupils(cap.0.institution_id, Some(user_id))
        .await?
        .into_iter()
        .next())
}

/// The institution's active employees, by name (for its admins).
pub async fn employees(store: &dyn Store, cap: &InstitutionAdmin) -> Result<Vec<EmployeeRow>> {
    let mut rows = store
        .institution_employees(cap.0.institution_id, None)
        .await?;
    rows.sort_by(|a, b| {
        (&a.given_name, &a.family_name, &a.user_id).cmp(&(
            &b.given_name,
            &b.family_name,
            &b.user_id,
        ))
    });
    Ok(rows)
}

/// Issues an activation code for a pupil of the institution; the code is
/// returned once, to be handed over. `None`: no such pupil there.
pub async fn issue_pupil_activation(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    cap: &PupilReset,
    user_id: &str,
) -> Result<Option<(PupilRow, String)>> {
    let Some(pupil) = pupil(store, cap, user_id).await? else {
        return Ok(None);
    };
    let Some(account) = store.account(&pupil.user_id).await? else {
        return Ok(None);
    };
    let code = login::issue_activation(store, clock, cfg, &account, &cap.0.actor()).await?;
    Ok(Some((pupil, code)))
}

async fn unlock(
    store: &dyn Store,
    clock: &dyn Clock,
    access: &StaffAccess,
    person_id: i64,
) -> Result<()> {
    let ev = NewEvent::new(access.actor(), actions::ACCOUNT_UNLOCKED)
        .institution(access.number.clone())
        .subjects(vec![person_id]);
    store.unlock(person_id, clock.now(), ev).await
}

/// Unlocks a pupil of the institution; false: no such pupil there.
pub async fn unlock_pupil(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &PupilReset,
    user_id: &str,
) -> Result<bool> {
    let Some(p) = pupil(store, cap, user_id).await? else {
        return Ok(false);
    };
    unlock(store, clock, &cap.0, p.person_id).await?;
    Ok(true)
}

/// An admin unlocks any person of the institution (a pupil, an employee,
/// or a contact person of one of its pupils); false: no such person there.
pub async fn unlock_member(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
    user_id: &str,
) -> Result<bool> {
    let Some(id) = store
        .institution_member(cap.0.institution_id, user_id)
        .await?
    else {
        return Ok(false);
    };
    unlock(store, clock, &cap.0, id).await?;
    Ok(true)
}

/// What a grant or revocation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    Done,
    /// No active employee with that user id at the institution.
    NotFound,
    /// A grant needs a reason.
    NoReason,
    /// Nothing to revoke.
    Unchanged,
}

/// Who changes a grant, at which institution (id, number).
struct Granter<'a> {
    institution_id: i64,
    number: &'a str,
    actor: String,
    /// `None`: an operator (the CLI).
    person_id: Option<i64>,
}

/// Grants or revokes [`PUPIL_RESET`] for an active employee of the
/// granter's institution. A grant needs a reason; so does nothing else.
async fn set_right(
    store: &dyn Store,
    clock: &dyn Clock,
    by: Granter<'_>,
    right: &str,
    user_id: &str,
    reason: &str,
    grant: bool,
) -> Result<GrantOutcome> {
    let reason: String = reason.trim().chars().take(REASON_MAX).collect();
    if grant && reason.is_empty() {
        return Ok(GrantOutcome::NoReason);
    }
    let Some(e) = store
        .institution_employees(by.institution_id, Some(user_id))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(GrantOutcome::NotFound);
    };
    let (action, by_key) = if grant {
        (actions::RIGHT_GRANTED, "granted_by")
    } else {
        (actions::RIGHT_REVOKED, "revoked_by")
    };
    let ev = NewEvent::new(by.actor, action)
        .institution(by.number)
        .subjects(vec![e.person_id])
        .details(json!({"right": right, by_key: by.person_id, "reason": reason}));
    let at = clock.now();
    if grant {
        store
            .grant_right(
                by.institution_id,
                e.person_id,
                right,
                by.person_id,
                &reason,
                at,
                ev,
            )
            .await?;
        return Ok(GrantOutcome::Done);
    }
    let changed = store
        .revoke_right(by.institution_id, e.person_id, right, at, ev)
        .await?;
    Ok(if changed {
        GrantOutcome::Done
    } else {
        GrantOutcome::Unchanged
    })
}

fn admin_granter(cap: &InstitutionAdmin) -> Granter<'_> {
    Granter {
        institution_id: cap.0.institution_id,
        number: &cap.0.number,
        actor: cap.0.actor(),
        person_id: Some(cap.0.person_id),
    }
}

/// An admin grants [`PUPIL_RESET`] to an employee of the institution.
pub async fn grant_reset(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
    user_id: &str,
    reason: &str,
) -> Result<GrantOutcome> {
    set_right(
        store,
        clock,
        admin_granter(cap),
        PUPIL_RESET,
        user_id,
        reason,
        true,
    )
    .await
}

/// An admin revokes an explicit grant of [`PUPIL_RESET`] (a right that
/// comes from a roster role stays as long as the role).
pub async fn revoke_reset(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
    user_id: &str,
    reason: &str,
) -> Result<GrantOutcome> {
    set_right(
        store,
        clock,
        admin_granter(cap),
        PUPIL_RESET,
        user_id,
        reason,
        false,
    )
    .await
}

/// An operator (the CLI, audited as `actor`) grants or revokes a right of
/// [`GRANTABLE`] for an employee of institution `number`: [`PUPIL_RESET`]
/// for schools whose roster delivers no leader yet, [`INSTITUTION_ADMIN`]
/// for whom the municipality names as the school's admin. [`OPERATOR`]
/// is not tied to an institution: `number` is ignored for it.
#[allow(clippy::too_many_arguments)]
pub async fn operator_set_right(
    store: &dyn Store,
    clock: &dyn Clock,
    right: &str,
    number: &str,
    user_id: &str,
    reason: &str,
    grant: bool,
    actor: &str,
) -> Result<GrantOutcome> {
    if !GRANTABLE.contains(&right) {
        return Err(crate::Error::invalid(
            "STAFF_UNKNOWN_RIGHT",
            format!("unknown right {right:?}; one of {}", GRANTABLE.join(", ")),
        ));
    }
    if right == OPERATOR {
        return operator_set_operator(store, clock, user_id, reason, grant, actor).await;
    }
    let Some(account) = store.account(user_id).await? else {
        return Ok(GrantOutcome::NotFound);
    };
    // The grantee's own standing names the institution (by id) if they
    // are employed there.
    let Some(at) = store
        .staff_standing(account.person_id)
        .await?
        .into_iter()
        .find(|s| s.number == number)
    else {
        return Ok(GrantOutcome::NotFound);
    };
    let by = Granter {
        institution_id: at.institution_id,
        number,
        actor: actor.to_owned(),
        person_id: None,
    };
    set_right(store, clock, by, right, user_id, reason, grant).await
}

/// An operator (the CLI, audited as `actor`) grants or revokes a right of
/// [`MUNICIPALITY_GRANTABLE`] for municipality `code` to the person with
/// `user_id`, who must be active and hold an active employee role
/// somewhere (pupils and contact persons never become admins). A grant
/// needs a reason and a municipality with at least one institution.
#[allow(clippy::too_many_arguments)]
pub async fn operator_set_municipality_right(
    store: &dyn Store,
    clock: &dyn Clock,
    right: &str,
    code: &str,
    user_id: &str,
    reason: &str,
    grant: bool,
    actor: &str,
) -> Result<GrantOutcome> {
    if !MUNICIPALITY_GRANTABLE.contains(&right) {
        return Err(crate::Error::invalid(
            "STAFF_UNKNOWN_RIGHT",
            format!(
                "unknown municipality right {right:?}; one of {}",
                MUNICIPALITY_GRANTABLE.join(", ")
            ),
        ));
    }
    let reason: String = reason.trim().chars().take(REASON_MAX).collect();
    if grant && reason.is_empty() {
        return Ok(GrantOutcome::NoReason);
    }
    let Some(account) = store.account(user_id).await? else {
        return Ok(GrantOutcome::NotFound);
    };
    if grant {
        if store.staff_standing(account.person_id).await?.is_empty() {
            return Ok(GrantOutcome::NotFound);
        }
        let known = store
            .institutions()
            .await?
            .iter()
            .any(|i| i.municipality_code.as_deref() == Some(code));
        if !known {
            return Err(crate::Error::NotFound(format!(
                "institutions of municipality {code}"
            )));
        }
    }
    let (action, by_key) = if grant {
        (actions::RIGHT_GRANTED, "granted_by")
    } else {
        (actions::RIGHT_REVOKED, "revoked_by")
    };
    // Tied to no one institution: the right spans the municipality.
    let ev = NewEvent::new(actor, action)
        .subjects(vec![account.person_id])
        .details(json!({"right": right, "municipality": code, by_key: actor, "reason": reason}));
    let at = clock.now();
    if grant {
        store
            .grant_municipality_right(code, account.person_id, right, actor, &reason, at, ev)
            .await?;
        return Ok(GrantOutcome::Done);
    }
    let changed = store
        .revoke_municipality_right(code, account.person_id, right, at, ev)
        .await?;
    Ok(if changed {
        GrantOutcome::Done
    } else {
        GrantOutcome::Unchanged
    })
}

/// Capability: the holder is an operator (see [`OPERATOR`]).
#[derive(Debug, Clone)]
pub struct Operator {
    person_id: i64,
}

impl Operator {
    /// The holder as an audit actor (`person:<id>`).
    pub fn actor_ref(&self) -> String {
        format!("person:{}", self.person_id)
    }
}

/// The operator capability for this person, if they hold the right.
pub async fn operator(store: &dyn Store, person_id: i64) -> Result<Option<Operator>> {
    Ok(store
        .is_operator(person_id)
        .await?
        .then_some(Operator { person_id }))
}

/// An operator (the CLI, audited as `actor`) grants or revokes
/// [`OPERATOR`] for the person with this user id. A grant needs a reason.
pub async fn operator_set_operator(
    store: &dyn Store,
    clock: &dyn Clock,
    user_id: &str,
    reason: &str,
    grant: bool,
    actor: &str,
) -> Result<GrantOutcome> {
    let reason: String = reason.trim().chars().take(REASON_MAX).collect();
    if grant && reason.is_empty() {
        return Ok(GrantOutcome::NoReason);
    }
    let Some(account) = store.account(user_id).await? else {
        return Ok(GrantOutcome::NotFound);
    };
    let (action, by_key) = if grant {
        (actions::RIGHT_GRANTED, "granted_by")
    } else {
        (actions::RIGHT_REVOKED, "revoked_by")
    };
    let ev = NewEvent::new(actor, action)
        .subjects(vec![account.person_id])
        .details(json!({"right": OPERATOR, by_key: actor, "reason": reason}));
    let at = clock.now();
    if grant {
        store
            .grant_operator(account.person_id, &reason, actor, at, ev)
            .await?;
        return Ok(GrantOutcome::Done);
    }
    Ok(if store.revoke_operator(account.person_id, at, ev).await? {
        GrantOutcome::Done
    } else {
        GrantOutcome::Unchanged
    })
}

/// For the cards module: the capability's institution and actor.
pub(crate) fn parts(cap: &PupilReset) -> (i64, &str, String) {
    (cap.0.institution_id, &cap.0.number, cap.0.actor())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn standing(roles: &[RoleKind], granted: &[&str]) -> StaffStanding {
        StaffStanding {
            institution_id: 1,
            number: "101001".into(),
            name: "Skole".into(),
            roles: roles.to_vec(),
            granted: granted.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn rights_come_from_roles_or_grants_and_admins_are_leaders() {
        use RoleKind::*;
        for r in [Teacher, Pedagogue] {
            let a = access_of(7, standing(&[r], &[])).unwrap();
            assert!(!a.is_admin());
        }
        for r in [Leader, Management] {
            assert!(access_of(7, standing(&[r], &[])).unwrap().is_admin());
        }
        for r in [Substitute, Consultant] {
            assert_eq!(access_of(7, standing(&[r], &[])), None);
            let a = access_of(7, standing(&[r], &[PUPIL_RESET])).unwrap();
            assert!(!a.is_admin() && a.admin().is_none());
        }
        assert_eq!(access_of(7, standing(&[Substitute], &["other"])), None);
        // Granted by the municipality (an operator).
        let a = access_of(7, standing(&[Consultant], &[INSTITUTION_ADMIN])).unwrap();
        assert!(a.is_admin() && a.admin().is_some());
    }

    #[test]
    fn a_municipality_admin_raises_access_and_adds_institutions_once() {
        let mut out = vec![access_of(7, standing(&[RoleKind::Teacher], &[])).unwrap()];
        assert!(!out[0].is_admin());
        let admin = |id: i64, number: &str| StaffAccess {
            person_id: 7,
            institution_id: id,
            number: number.into(),
            name: "Skole".into(),
            admin: true,
        };
        merge_admin(&mut out, vec![admin(1, "101001"), admin(2, "101002")]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(StaffAccess::is_admin));
    }

    #[test]
    fn a_lock_in_the_past_is_no_lock() {
        assert_eq!(state_of(true, Some(100), 200), AccountState::Active);
        assert_eq!(state_of(true, Some(300), 200), AccountState::Locked);
        assert_eq!(state_of(false, None, 200), AccountState::NotActivated);
    }
}
