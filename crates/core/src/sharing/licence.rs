//! Licences (Givadgang): which institutions, groups and persons may use a
//! service, from and to a date. Granted by an institution admin, or by the
//! provider for what it sold with the institution's consent; in bulk from
//! CSV. A login to a service marked `licence_required` checks them.

use super::portal::{self, ProviderUser};
use super::{actions, agreement};
use crate::audit::NewEvent;
use crate::identity::rights::InstitutionAdmin;
use crate::roster::import::native::parse_date;
use crate::store::Store;
use crate::{Clock, Error, Result};
use serde_json::json;
use time::Date;

/// Whom a licence covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceScope {
    /// Everyone at the institution.
    Institution,
    /// Members of a group (its id in the source system).
    Group(String),
    /// One person (user id).
    Person(String),
}

impl LicenceScope {
    pub fn kind(&self) -> &'static str {
        match self {
            LicenceScope::Institution => "institution",
            LicenceScope::Group(_) => "group",
            LicenceScope::Person(_) => "person",
        }
    }
    pub fn target(&self) -> &str {
        match self {
            LicenceScope::Institution => "",
            LicenceScope::Group(t) | LicenceScope::Person(t) => t,
        }
    }
    pub fn from_parts(kind: &str, target: &str) -> Option<LicenceScope> {
        let target = target.trim();
        match kind.trim() {
            "institution" => Some(LicenceScope::Institution),
            "group" if !target.is_empty() => Some(LicenceScope::Group(target.to_owned())),
            "person" if !target.is_empty() => Some(LicenceScope::Person(target.to_owned())),
            _ => None,
        }
    }
}

/// How a licence came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantor {
    /// An institution admin (or operator) of the institution.
    Institution,
    /// The provider, for what it sold; `consent` references the
    /// institution's consent (an order, a signed agreement).
    Provider { consent: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicence {
    pub client_id: String,
    pub institution: String,
    pub scope: LicenceScope,
    pub valid_from: Date,
    /// Inclusive; `None`: until withdrawn.
    pub valid_to: Option<Date>,
    pub granted_by: String,
    /// The institution's consent, when the provider granted it.
    pub consent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub id: i64,
    pub new: NewLicence,
    pub created_at: i64,
    pub withdrawn_at: Option<i64>,
    pub withdrawn_by: Option<String>,
}

impl Licence {
    /// Live on `today` and covering a person with this user id and these
    /// group ids at `institution`.
    pub fn covers(&self, institution: &str, user_id: &str, groups: &[&str], today: Date) -> bool {
        let n = &self.new;
        self.live_on(today)
            && n.institution == institution
            && match &n.scope {
                LicenceScope::Institution => true,
                LicenceScope::Group(g) => groups.contains(&g.as_str()),
                LicenceScope::Person(u) => u == user_id,
            }
    }
}

impl Licence {
    /// Not withdrawn, and `today` within its dates.
    pub fn live_on(&self, today: Date) -> bool {
        self.withdrawn_at.is_none()
            && self.new.valid_from <= today
            && self.new.valid_to.is_none_or(|t| today <= t)
    }
}

/// Whether any of the licences lets this person use the service at any of
/// their institutions today.
pub fn licensed(
    licences: &[Licence],
    institutions: &[&str],
    user_id: &str,
    groups: &[&str],
    today: Date,
) -> bool {
    licences.iter().any(|l| {
        institutions
            .iter()
            .any(|i| l.covers(i, user_id, groups, today))
    })
}

fn check(l: &NewLicence) -> std::result::Result<(), (&'static str, String)> {
    if let Some(to) = l.valid_to {
        if to < l.valid_from {
            return Err(("to", "the end date is before the start date".into()));
        }
    }
    Ok(())
}

/// Grants licences in one transaction, one audit event each. `grantor`
/// says who: a provider must name the institution's consent.
pub async fn grant(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    grantor: &Grantor,
    rows: Vec<NewLicence>,
) -> Result<Vec<i64>> {
    let institutions = store.institutions().await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    let mut seen_services: Vec<String> = Vec::new();
    for mut l in rows {
        if !seen_services.contains(&l.client_id) {
            if store.service(&l.client_id).await?.is_none() {
                return Err(Error::NotFound(format!("service {}", l.client_id)));
            }
            seen_services.push(l.client_id.clone());
        }
        if !institutions.iter().any(|i| i.number == l.institution) {
            return Err(Error::UnknownInstitution(l.institution));
        }
        if let Err((_, msg)) = check(&l) {
            return Err(Error::invalid("LICENCE_INVALID", msg));
        }
        l.consent =
            match grantor {
                Grantor::Institution => None,
                Grantor::Provider { consent } if !consent.trim().is_empty() => {
                    Some(consent.trim().to_owned())
                }
                Grantor::Provider { .. } => return Err(Error::invalid(
                    "LICENCE_CONSENT_REQUIRED",
                    "a provider grants licences only with a reference to the institution's consent",
                )),
            };
        l.granted_by = actor.to_owned();
        events.push(
            NewEvent::new(actor, actions::LICENCE_GRANTED)
                .institution(l.institution.clone())
                .details(json!({
                    "service": l.client_id, "scope": l.scope.kind(), "target": l.scope.target(),
                    "from": l.valid_from.to_string(), "to": l.valid_to.map(|d| d.to_string()),
                    "consent": l.consent,
                })),
        );
        out.push(l);
    }
    store.add_licences(&out, clock.now(), events).await
}

pub async fn withdraw(store: &dyn Store, clock: &dyn Clock, actor: &str, id: i64) -> Result<bool> {
    let Some(l) = store
        .licences(None, None)
        .await?
        .into_iter()
        .find(|l| l.id == id)
    else {
        return Ok(false);
    };
    let ev = NewEvent::new(actor, actions::LICENCE_WITHDRAWN)
        .institution(l.new.institution.clone())
        .details(json!({"service": l.new.client_id, "licence": id}));
    store.withdraw_licence(id, actor, clock.now(), ev).await
}

/// One error of a CSV file, with its line and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvIssue {
    pub line: u64,
    pub field: String,
    /// A stable code for pages to word it (`LICENCE_CSV_*`).
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for CsvIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, field {}: {}",
            self.line, self.field, self.message
        )
    }
}

/// The file or a record could not be read as CSV.
pub const CSV_UNREADABLE: &str = "LICENCE_CSV_UNREADABLE";
/// A column of [`CSV_HEADER`] is missing.
pub const CSV_MISSING_COLUMN: &str = "LICENCE_CSV_MISSING_COLUMN";
pub const CSV_EMPTY: &str = "LICENCE_CSV_EMPTY";
pub const CSV_NO_TARGET: &str = "LICENCE_CSV_NO_TARGET";
pub const CSV_BAD_SCOPE: &str = "LICENCE_CSV_BAD_SCOPE";
pub const CSV_BAD_DATE: &str = "LICENCE_CSV_BAD_DATE";
pub const CSV_END_BEFORE_START: &str = "LICENCE_CSV_END_BEFORE_START";
/// [`admin_grant`]: a row names another institution than the admin's.
pub const CSV_OTHER_INSTITUTION: &str = "LICENCE_CSV_OTHER_INSTITUTION";
/// [`admin_grant`]: the service has neither an approval in force nor the
/// minimal package at the institution.
pub const CSV_SERVICE_NOT_HERE: &str = "LICENCE_CSV_SERVICE_NOT_HERE";
/// [`admin_grant`]: no active group with that id at the institution.
pub const CSV_UNKNOWN_GROUP: &str = "LICENCE_CSV_UNKNOWN_GROUP";
/// [`admin_grant`]: no active person with that user id there.
pub const CSV_UNKNOWN_PERSON: &str = "LICENCE_CSV_UNKNOWN_PERSON";

/// [`provider_grant`]: no institution has that number.
pub const CSV_UNKNOWN_INSTITUTION: &str = "LICENCE_CSV_UNKNOWN_INSTITUTION";
/// [`provider_grant`]: the service has neither an approval in force nor
/// the minimal package at the institution named, so it sold nothing there.
pub const CSV_NO_STANDING: &str = "LICENCE_CSV_NO_STANDING";

/// The CSV header bulk grants use.
pub const CSV_HEADER: &[&str] = &["service", "institution", "scope", "target", "from", "to"];

/// Parses a bulk grant: header `service,institution,scope,target,from,to`
/// (`scope` is institution, group or person; `target` the group id or user
/// id; dates YYYY-MM-DD, `to` may be empty). All errors are returned, each
/// with its line and field; nothing is granted unless there are none.
pub fn parse_csv(
    data: &[u8],
    granted_by: &str,
) -> std::result::Result<Vec<NewLicence>, Vec<CsvIssue>> {
    parse_csv_lines(data, granted_by).map(|rows| rows.into_iter().map(|(_, l)| l).collect())
}

/// [`parse_csv`], each licence with the line it came from (for checks
/// that come later, such as [`admin_grant`]'s).
pub fn parse_csv_lines(
    data: &[u8],
    granted_by: &str,
) -> std::result::Result<Vec<(u64, NewLicence)>, Vec<CsvIssue>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(data);
    let mut issues = Vec::new();
    let issue = |line: u64, field: &str, code: &'static str, message: String| CsvIssue {
        line,
        field: field.to_owned(),
        code,
        message,
    };
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![issue(1, "header", CSV_UNREADABLE, e.to_string())]),
    };
    let mut idx = [0usize; 6];
    for (k, name) in CSV_HEADER.iter().enumerate() {
        match header.iter().position(|h| h == name) {
            Some(i) => idx[k] = i,
            None => issues.push(issue(
                1,
                name,
                CSV_MISSING_COLUMN,
                format!("missing column; the header is {}", CSV_HEADER.join(",")),
            )),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                issues.push(issue(line, "-", CSV_UNREADABLE, e.to_string()));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let get = |k: usize| rec.get(idx[k]).unwrap_or("").trim();
        let before = issues.len();
        let service = get(0);
        if service.is_empty() {
            issues.push(issue(line, "service", CSV_EMPTY, "empty".into()));
        }
        let institution = get(1);
        if institution.is_empty() {
            issues.push(issue(line, "institution", CSV_EMPTY, "empty".into()));
        }
        let scope = LicenceScope::from_parts(get(2), get(3));
        if scope.is_none() {
            let (field, code, msg) = match get(2) {
                "group" | "person" => (
                    "target",
                    CSV_NO_TARGET,
                    format!("a {} licence needs a target", get(2)),
                ),
                other => (
                    "scope",
                    CSV_BAD_SCOPE,
                    format!("{other:?} is not one of institution, group, person"),
                ),
            };
            issues.push(issue(line, field, code, msg));
        }
        let from = parse_date(get(4));
        if from.is_none() {
            issues.push(issue(
                line,
                "from",
                CSV_BAD_DATE,
                format!("{:?} is not a date (YYYY-MM-DD)", get(4)),
            ));
        }
        let to = match get(5) {
            "" => Some(None),
            s => parse_date(s).map(Some),
        };
        if to.is_none() {
            issues.push(issue(
                line,
                "to",
                CSV_BAD_DATE,
                format!("{:?} is not a date (YYYY-MM-DD)", get(5)),
            ));
        }
        if issues.len() > before {
            continue;
        }
        if let (Some(scope), Some(from), Some(to)) = (scope, from, to) {
            let l = NewLicence {
                client_id: service.to_owned(),
                institution: institution.to_owned(),
                scope,
                valid_from: from,
                valid_to: to,
                granted_by: granted_by.to_owned(),
                consent: None,
            };
            match check(&l) {
                Ok(()) => out.push((line, l)),
                Err((field, msg)) => issues.push(issue(line, field, CSV_END_BEFORE_START, msg)),
            }
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// The services an institution admin may license: those with an approval
/// in force or listed with the minimal package at the institution.
pub async fn grantable_services(store: &dyn Store, cap: &InstitutionAdmin) -> Result<Vec<String>> {
    Ok(agreement::overview(store, cap)
        .await?
        .into_iter()
        .filter(|s| s.agreement.approval.is_some() || s.listed.is_some())
        .map(|s| s.client_id)
        .collect())
}

/// The institution's active groups as (id, name), by name: what a group
/// licence may name.
pub async fn groups(store: &dyn Store, cap: &InstitutionAdmin) -> Result<Vec<(String, String)>> {
    groups_at(store, cap.access().institution_id()).await
}

async fn groups_at(store: &dyn Store, institution_id: i64) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = store
        .export_groups(institution_id)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    Ok(out)
}

/// A licence as its institution's admin sees it: the target in words
/// (a group's name; a person's name as staff pages show it, alias names
/// for protected persons; empty when no longer there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub licence: Licence,
    pub target_name: String,
}

/// The institution's licences, newest first. Naming persons is a read of
/// personal data: when any are named, one `licence.listed` event names
/// them.
pub async fn at_institution(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
) -> Result<Vec<Listed>> {
    let access = cap.access();
    let groups = groups(store, cap).await?;
    let mut named = Vec::new();
    let mut out = Vec::new();
    for l in store
        .licences(None, Some(access.number()))
        .await?
        .into_iter()
        .rev()
    {
        let target_name = match &l.new.scope {
            LicenceScope::Institution => String::new(),
            LicenceScope::Group(g) => groups
                .iter()
                .find(|(id, _)| id == g)
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            LicenceScope::Person(u) => {
                match person_name(store, access.institution_id(), u).await? {
                    Some((id, name)) => {
                        named.push(id);
                        name
                    }
                    None => String::new(),
                }
            }
        };
        out.push(Listed {
            licence: l,
            target_name,
        });
    }
    if !named.is_empty() {
        named.sort_unstable();
        named.dedup();
        let ev = NewEvent::new(access.actor_ref(), actions::LICENCE_LISTED)
            .institution(access.number().to_owned())
            .subjects(named);
        store.append_audit(clock.now(), vec![ev]).await?;
    }
    Ok(out)
}

/// An active pupil's or employee's id and name at the institution.
async fn person_name(
    store: &dyn Store,
    institution_id: i64,
    user_id: &str,
) -> Result<Option<(i64, String)>> {
    if let Some(p) = store
        .institution_pupils(institution_id, Some(user_id))
        .await?
        .into_iter()
        .next()
    {
        return Ok(Some((
            p.person_id,
            format!("{} {}", p.given_name, p.family_name),
        )));
    }
    Ok(store
        .institution_employees(institution_id, Some(user_id))
        .await?
        .into_iter()
        .next()
        .map(|e| (e.person_id, format!("{} {}", e.given_name, e.family_name))))
}

/// An institution admin grants licences at their own institution (one
/// from the page's form, or a CSV file's lines): each row must name the
/// admin's institution, a service of [`grantable_services`], and a group
/// or person that belongs to the institution. Every problem comes back
/// with its line and field, and nothing is granted unless there are none;
/// otherwise [`grant`] writes them with one audit event each.
pub async fn admin_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
    rows: Vec<(u64, NewLicence)>,
) -> Result<std::result::Result<Vec<i64>, Vec<CsvIssue>>> {
    let access = cap.access();
    let services = grantable_services(store, cap).await?;
    let groups = groups(store, cap).await?;
    let mut issues = Vec::new();
    for (line, l) in &rows {
        let mut issue = |line: u64, field: &str, code: &'static str, message: String| {
            issues.push(CsvIssue {
                line,
                field: field.to_owned(),
                code,
                message,
            })
        };
        if l.institution != access.number() {
            issue(
                *line,
                "institution",
                CSV_OTHER_INSTITUTION,
                format!(
                    "{:?} is not this institution ({})",
                    l.institution,
                    access.number()
                ),
            );
        }
        if !services.contains(&l.client_id) {
            issue(
                *line,
                "service",
                CSV_SERVICE_NOT_HERE,
                format!(
                    "{:?} has no approval and no minimal package here",
                    l.client_id
                ),
            );
        }
        issues.extend(target_issues(store, access.institution_id(), &groups, *line, l).await?);
    }
    if !issues.is_empty() {
        return Ok(Err(issues));
    }
    let rows = rows.into_iter().map(|(_, l)| l).collect();
    grant(
        store,
        clock,
        &access.actor_ref(),
        &Grantor::Institution,
        rows,
    )
    .await
    .map(Ok)
}

/// What every grant checks of a row against its institution (internal id
/// `institution_id`, with its active `groups`): the group or person
/// belongs there, and the dates are in order.
async fn target_issues(
    store: &dyn Store,
    institution_id: i64,
    groups: &[(String, String)],
    line: u64,
    l: &NewLicence,
) -> Result<Vec<CsvIssue>> {
    let issue = |field: &str, code: &'static str, message: String| CsvIssue {
        line,
        field: field.to_owned(),
        code,
        message,
    };
    let mut out = Vec::new();
    match &l.scope {
        LicenceScope::Institution => {}
        LicenceScope::Group(g) => {
            if !groups.iter().any(|(id, _)| id == g) {
                out.push(issue(
                    "target",
                    CSV_UNKNOWN_GROUP,
                    format!("no group {g:?} here"),
                ));
            }
        }
        LicenceScope::Person(u) => {
            if store.institution_member(institution_id, u).await?.is_none() {
                out.push(issue(
                    "target",
                    CSV_UNKNOWN_PERSON,
                    format!("no person {u:?} here"),
                ));
            }
        }
    }
    if let Err((field, msg)) = check(l) {
        out.push(issue(field, CSV_END_BEFORE_START, msg));
    }
    Ok(out)
}

/// Whether the service may be licensed at the institution: it has an
/// approval in force there, or the institution listed it with the minimal
/// package (as [`grantable_services`] counts for the admin).
pub async fn has_standing(store: &dyn Store, client_id: &str, institution: &str) -> Result<bool> {
    if agreement::current_approval(store, client_id, institution)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    Ok(store
        .requests(Some(client_id), Some(institution))
        .await?
        .iter()
        .any(|r| r.status == agreement::RequestStatus::Listed))
}

/// A provider user grants licences for one of their provider's services
/// (else `NotFound`), with the institution's `consent` (an order number, a
/// signed agreement): each row must name that service, an institution
/// where the service has standing ([`has_standing`]), and a group or
/// person that belongs there. As [`admin_grant`]: every problem with its
/// line and field, nothing granted unless there are none; then [`grant`]
/// as the provider, one audit event each.
pub async fn provider_grant(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &ProviderUser,
    client_id: &str,
    consent: &str,
    rows: Vec<(u64, NewLicence)>,
) -> Result<std::result::Result<Vec<i64>, Vec<CsvIssue>>> {
    portal::service(store, who, client_id).await?;
    let mut issues = Vec::new();
    let issue = |line: u64, field: &str, code: &'static str, message: &str| CsvIssue {
        line,
        field: field.to_owned(),
        code,
        message: message.to_owned(),
    };
    if consent.trim().is_empty() {
        issues.push(issue(
            0,
            "consent",
            CSV_EMPTY,
            "the institution's consent is required",
        ));
    }
    for (line, l) in &rows {
        if l.client_id != client_id {
            issues.push(issue(
                *line,
                "service",
                CSV_SERVICE_NOT_HERE,
                "another service",
            ));
        }
        let Some(at) = store.export_institution(&l.institution).await? else {
            issues.push(issue(
                *line,
                "institution",
                CSV_UNKNOWN_INSTITUTION,
                "no such institution",
            ));
            continue;
        };
        if !has_standing(store, client_id, &l.institution).await? {
            issues.push(issue(
                *line,
                "institution",
                CSV_NO_STANDING,
                "the service has no approval and no minimal package there",
            ));
            continue;
        }
        let groups = groups_at(store, at.id).await?;
        issues.extend(target_issues(store, at.id, &groups, *line, l).await?);
    }
    if !issues.is_empty() {
        return Ok(Err(issues));
    }
    let grantor = Grantor::Provider {
        consent: consent.to_owned(),
    };
    let rows = rows.into_iter().map(|(_, l)| l).collect();
    grant(store, clock, &who.actor_ref(), &grantor, rows)
        .await
        .map(Ok)
}

/// The licences of one of the provider's services (else `NotFound`),
/// newest first.
pub async fn of_service(
    store: &dyn Store,
    who: &ProviderUser,
    client_id: &str,
) -> Result<Vec<Licence>> {
    portal::service(store, who, client_id).await?;
    let mut out = store.licences(Some(client_id), None).await?;
    out.reverse();
    Ok(out)
}

/// A provider user withdraws a live licence the provider granted (it
/// carries a consent) for one of their services; false when there is no
/// such licence (an institution's own grant is not the provider's to end).
pub async fn provider_withdraw(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &ProviderUser,
    client_id: &str,
    id: i64,
) -> Result<bool> {
    let ours = of_service(store, who, client_id)
        .await?
        .iter()
        .any(|l| l.id == id && l.withdrawn_at.is_none() && l.new.consent.is_some());
    if !ours {
        return Ok(false);
    }
    withdraw(store, clock, &who.actor_ref(), id).await
}

/// An institution admin withdraws a licence of their institution; false
/// when there is no such live licence there (another institution's is not
/// found either).
pub async fn admin_withdraw(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &InstitutionAdmin,
    id: i64,
) -> Result<bool> {
    let number = cap.access().number();
    let ours = store
        .licences(None, Some(number))
        .await?
        .iter()
        .any(|l| l.id == id && l.withdrawn_at.is_none());
    if !ours {
        return Ok(false);
    }
    withdraw(store, clock, &cap.access().actor_ref(), id).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    #[test]
    fn csv_errors_name_line_and_field() {
        let csv = "service,institution,scope,target,from,to\n\
                   app,101001,institution,,2026-08-01,2027-07-31\n\
                   app,101001,group,,2026-08-01,\n\
                   app,101001,person,u1,2026-13-01,\n\
                   app,101001,class,x,2026-08-01,\n\
                   app,101001,person,u1,2026-08-01,2026-01-01\n";
        let issues = parse_csv(csv.as_bytes(), "cli").unwrap_err();
        let got: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("line 3, field target"), "{got:?}");
        assert!(got[1].starts_with("line 4, field from"), "{got:?}");
        assert!(got[2].starts_with("line 5, field scope"), "{got:?}");
        assert!(got[3].starts_with("line 6, field to"), "{got:?}");
        let ok = parse_csv(
            b"service,institution,scope,target,from,to\napp,101001,person,u1,2026-08-01,\n",
            "cli",
        )
        .unwrap();
        assert_eq!(ok[0].scope, LicenceScope::Person("u1".into()));
        assert_eq!(ok[0].valid_to, None);
        assert!(parse_csv(b"service,institution\n", "cli").is_err());
    }

    #[test]
    fn a_licence_covers_its_scope_within_its_dates() {
        let l = |scope| Licence {
            id: 1,
            new: NewLicence {
                client_id: "app".into(),
                institution: "101001".into(),
                scope,
                valid_from: date!(2026 - 08 - 01),
                valid_to: Some(date!(2027 - 07 - 31)),
                granted_by: "cli".into(),
                consent: None,
            },
            created_at: 0,
            withdrawn_at: None,
            withdrawn_by: None,
        };
        let day = date!(2026 - 09 - 01);
        let inst = l(LicenceScope::Institution);
        assert!(inst.covers("101001", "u1", &[], day));
        assert!(!inst.covers("101002", "u1", &[], day));
        assert!(!inst.covers("101001", "u1", &[], date!(2026 - 07 - 31)));
        assert!(!inst.covers("101001", "u1", &[], date!(2027 - 08 - 01)));
        let g = l(LicenceScope::Group("5a".into()));
        assert!(g.covers("101001", "u1", &["5a"], day));
        assert!(!g.covers("101001", "u1", &["5b"], day));
        let p = l(LicenceScope::Person("u1".into()));
        assert!(p.covers("101001", "u1", &[], day) && !p.covers("101001", "u2", &[], day));
        let mut w = l(LicenceScope::Institution);
        w.withdrawn_at = Some(1);
        assert!(!licensed(&[w], &["101001"], "u1", &[], day));
    }
}
