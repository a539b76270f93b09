//! The registry of every audit action tilgang writes: one constant per
//! action, and `ALL` with a one-line description each. Code names actions
//! only through these constants, so the coverage test (below) can tell
//! what is audited and whether a test asserts each event.

/// A person signed in with a password, a passkey or a login card.
pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
/// A sign-in was refused (the reason is in the details, never the password).
pub const LOGIN_FAILED: &str = "login.failed";
/// Too many attempts from one address: sign-in refused without checking.
pub const LOGIN_THROTTLED: &str = "login.throttled";
/// A session was raised to two factors.
pub const LOGIN_STEP_UP: &str = "login.step_up";
/// A second-factor code or passkey was wrong, replayed or refused.
pub const LOGIN_STEP_UP_FAILED: &str = "login.step_up_failed";
/// A person signed out.
pub const LOGOUT: &str = "logout";
/// A person ended one of their other sessions from the account page.
pub const SESSION_ENDED: &str = "session.ended";
/// An account was locked after repeated failures.
pub const ACCOUNT_LOCKED: &str = "account.locked";
/// A locked account was unlocked by an admin or an operator.
pub const ACCOUNT_UNLOCKED: &str = "account.unlocked";
/// An activation code was issued (a password reset by staff or an operator).
pub const ACCOUNT_ACTIVATION_CODE_ISSUED: &str = "account.activation_code_issued";
/// A password was set or changed.
pub const ACCOUNT_PASSWORD_SET: &str = "account.password_set";
/// A second factor (TOTP or passkey) was enrolled.
pub const FACTOR_ADDED: &str = "factor.added";
/// A second factor was removed.
pub const FACTOR_REMOVED: &str = "factor.removed";
/// New recovery codes replaced the old ones.
pub const FACTOR_RECOVERY_CODES_REPLACED: &str = "factor.recovery_codes_replaced";
/// A login card (QR) was printed for a pupil.
pub const CARD_ISSUED: &str = "card.issued";
/// A pupil's login card was revoked.
pub const CARD_REVOKED: &str = "card.revoked";
/// An institution admin or operator granted a staff right (with reason).
pub const RIGHT_GRANTED: &str = "right.granted";
/// A staff right was revoked (with reason).
pub const RIGHT_REVOKED: &str = "right.revoked";
/// Staff viewed the pupils of their institution (a view of personal data).
pub const STAFF_PUPILS_LISTED: &str = "staff.pupils_listed";
/// One import run's summary.
pub const ROSTER_IMPORT: &str = "roster.import";
/// One institution's part of an import run.
pub const ROSTER_IMPORT_INSTITUTION: &str = "roster.import.institution";
/// An operator exported an institution's roster.
pub const ROSTER_EXPORT: &str = "roster.export";
/// Persons first delivered by an import (user created).
pub const PERSON_CREATED: &str = "person.created";
/// Persons whose roster data changed.
pub const PERSON_UPDATED: &str = "person.updated";
/// Persons no longer delivered anywhere (user inactivated).
pub const PERSON_INACTIVATED: &str = "person.inactivated";
/// Inactive persons delivered again.
pub const PERSON_REACTIVATED: &str = "person.reactivated";
/// Roles given by an import.
pub const ROLE_GRANTED: &str = "role.granted";
/// Roles ended by an import (with reason).
pub const ROLE_ENDED: &str = "role.ended";
/// A person signed in to a service over OpenID Connect.
pub const OIDC_LOGIN: &str = "oidc.login";
/// A service received tokens (its access to the person's data).
pub const OIDC_TOKEN_ISSUED: &str = "oidc.token.issued";
/// A service read the person's data from the userinfo endpoint.
pub const OIDC_USERINFO: &str = "oidc.userinfo";
/// A service read persons' data through the data API (`/api/v1/me`,
/// `/api/v1/users/{id}`): the service, the package and every person sent.
pub const API_LOOKUP: &str = "api.lookup";
/// A service read an institution (name, groups, hierarchy) through the
/// data API.
pub const API_INSTITUTION: &str = "api.institution";
/// A service refreshed its tokens.
pub const OIDC_TOKEN_REFRESHED: &str = "oidc.token.refreshed";
/// A service revoked a token.
pub const OIDC_TOKEN_REVOKED: &str = "oidc.token.revoked";
/// An authorization code was used twice: its tokens were revoked.
pub const OIDC_CODE_REUSED: &str = "oidc.code.reused";
/// A refresh token was used twice: its family was revoked.
pub const OIDC_REFRESH_REUSED: &str = "oidc.refresh.reused";
/// An operator registered a service (a configuration change).
pub const OIDC_SERVICE_ADDED: &str = "oidc.service.added";
/// An operator removed a service (a configuration change).
pub const OIDC_SERVICE_REMOVED: &str = "oidc.service.removed";
/// The OIDC signing keys were rotated (a key rotation).
pub const OIDC_KEY_ROTATED: &str = "oidc.key.rotated";
/// The audit checkpoint signing key was made.
pub const AUDIT_KEY_CREATED: &str = "audit.key_created";
/// Audit retention ran: old events removed (up to a signed checkpoint)
/// and the content of events past their kind's period cleared; counts per
/// action.
pub const AUDIT_PRUNED: &str = "audit.pruned";
/// Someone searched the audit log.
pub const AUDIT_SEARCH: &str = "audit.search";
/// A person viewed (or downloaded) what tilgang holds about them or their child.
pub const MYDATA_VIEWED: &str = "mydata.viewed";
/// A security report was received (its reference only).
pub const SECURITY_REPORT_RECEIVED: &str = "security.report_received";
/// An operator acknowledged a security report (its reference only).
pub const SECURITY_REPORT_ACKNOWLEDGED: &str = "security.report_acknowledged";

/// A person chose the role they act in towards a service.
pub const OIDC_ROLE_CHOSEN: &str = "oidc.role.chosen";
/// A person forgot their remembered role for a service.
pub const OIDC_ROLE_FORGOTTEN: &str = "oidc.role.forgotten";
/// An operator registered a provider (an organisation running services).
pub const SHARING_PROVIDER_ADDED: &str = "sharing.provider_added";
/// An operator marked (or unmarked) a provider as a public authority.
pub const SHARING_PROVIDER_AUTHORITY: &str = "sharing.provider_authority_set";
/// A service was linked to its provider, or its licence flag changed.
pub const SHARING_SERVICE_LINKED: &str = "sharing.service_linked";
/// An operator made a provider portal login (an external person).
pub const SHARING_PROVIDER_USER_ADDED: &str = "sharing.provider_user_added";
/// A provider asked an institution for a data package (approval requested).
pub const SHARING_REQUESTED: &str = "sharing.requested";
/// A minimal-package request: recorded and listed, no approval needed.
pub const SHARING_LISTED: &str = "sharing.listed";
/// An institution approved a data access request (a versioned instruction).
pub const SHARING_APPROVED: &str = "sharing.approved";
/// An institution rejected a data access request (with reason).
pub const SHARING_REJECTED: &str = "sharing.rejected";
/// An institution revoked an approval.
pub const SHARING_REVOKED: &str = "sharing.revoked";
/// An institution blocked a service outright.
pub const SHARING_BLOCKED: &str = "sharing.blocked";
/// An institution lifted a block.
pub const SHARING_UNBLOCKED: &str = "sharing.unblocked";
/// A licence was granted to an institution, a group or a person.
pub const LICENCE_GRANTED: &str = "licence.granted";
/// A licence was withdrawn.
pub const LICENCE_WITHDRAWN: &str = "licence.withdrawn";
/// An institution admin viewed the licences, naming persons licensed by name.
pub const LICENCE_LISTED: &str = "licence.listed";
/// The lifecycle job closed accounts unused for too long.
pub const LIFECYCLE_CLOSE_UNUSED: &str = "lifecycle.close_unused";
/// The lifecycle job archived persons inactive for years.
pub const LIFECYCLE_ARCHIVE_INACTIVE: &str = "lifecycle.archive_inactive";
/// The lifecycle job erased persons past the retention period.
pub const LIFECYCLE_ERASE_EXPIRED: &str = "lifecycle.erase_expired";
/// The lifecycle job removed expired import input files.
pub const LIFECYCLE_PURGE_IMPORT_FILES: &str = "lifecycle.purge_import_files";
/// The lifecycle job removed changes feed rows past their retention.
pub const LIFECYCLE_CHANGES_RETENTION: &str = "lifecycle.changes_retention";
/// A service received a page of an institution's roster through the
/// export (`sharing::export`): names the service, package and persons.
pub const SHARING_EXPORTED: &str = "sharing.exported";
/// An operator exported everything held about a person.
pub const PERSON_EXPORTED: &str = "person.exported";
/// An operator erased a person (user deleted).
pub const PERSON_ERASED: &str = "person.erased";
/// An operator wrote an anonymised copy of the database.
pub const DATABASE_ANONYMIZED: &str = "database.anonymized";
/// A service read a page of the changes feed (subjects: the persons named).
pub const API_CHANGES: &str = "api.changes";
/// An institution admin viewed the list of the institution's former persons.
pub const STAFF_FORMER_LISTED: &str = "staff.former_listed";

/// Every action with a one-line description, for documentation, the search
/// page's action filter and the coverage test.
pub const ALL: &[(&str, &str)] = &[
    (LOGIN_SUCCEEDED, "signed in"),
    (LOGIN_FAILED, "sign-in refused"),
    (LOGIN_THROTTLED, "sign-in refused: too many attempts"),
    (LOGIN_STEP_UP, "second factor proved"),
    (LOGIN_STEP_UP_FAILED, "second factor refused"),
    (LOGOUT, "signed out"),
    (SESSION_ENDED, "another session ended by its owner"),
    (ACCOUNT_LOCKED, "account locked"),
    (ACCOUNT_UNLOCKED, "account unlocked"),
    (ACCOUNT_ACTIVATION_CODE_ISSUED, "activation code issued"),
    (ACCOUNT_PASSWORD_SET, "password set"),
    (FACTOR_ADDED, "second factor enrolled"),
    (FACTOR_REMOVED, "second factor removed"),
    (FACTOR_RECOVERY_CODES_REPLACED, "recovery codes replaced"),
    (CARD_ISSUED, "login card printed"),
    (CARD_REVOKED, "login card revoked"),
    (RIGHT_GRANTED, "staff right granted"),
    (RIGHT_REVOKED, "staff right revoked"),
    (STAFF_PUPILS_LISTED, "pupil list viewed by staff"),
    (ROSTER_IMPORT, "import run summary"),
    (ROSTER_IMPORT_INSTITUTION, "institution imported"),
    (ROSTER_EXPORT, "roster exported"),
    (PERSON_CREATED, "person created"),
    (PERSON_UPDATED, "person changed"),
    (PERSON_INACTIVATED, "person inactivated"),
    (PERSON_REACTIVATED, "person reactivated"),
    (ROLE_GRANTED, "role granted"),
    (ROLE_ENDED, "role removed"),
    (OIDC_LOGIN, "signed in to a service"),
    (OIDC_TOKEN_ISSUED, "tokens issued to a service"),
    (OIDC_USERINFO, "person's data read by a service (userinfo)"),
    (API_LOOKUP, "persons' data read by a service (data API)"),
    (
        API_INSTITUTION,
        "an institution read by a service (data API)",
    ),
    (OIDC_TOKEN_REFRESHED, "tokens refreshed by a service"),
    (OIDC_TOKEN_REVOKED, "token revoked by a service"),
    (OIDC_CODE_REUSED, "authorization code reused"),
    (OIDC_REFRESH_REUSED, "refresh token reused"),
    (OIDC_SERVICE_ADDED, "service registered"),
    (OIDC_SERVICE_REMOVED, "service removed"),
    (OIDC_KEY_ROTATED, "signing keys rotated"),
    (AUDIT_KEY_CREATED, "audit signing key made"),
    (
        AUDIT_PRUNED,
        "audit retention: old events removed or cleared",
    ),
    (AUDIT_SEARCH, "audit log searched"),
    (MYDATA_VIEWED, "own data viewed"),
    (SECURITY_REPORT_RECEIVED, "security report received"),
    (SECURITY_REPORT_ACKNOWLEDGED, "security report acknowledged"),
    (OIDC_ROLE_CHOSEN, "role chosen for a service"),
    (OIDC_ROLE_FORGOTTEN, "remembered role forgotten"),
    (SHARING_PROVIDER_ADDED, "provider registered"),
    (SHARING_PROVIDER_AUTHORITY, "provider's authority mark set"),
    (SHARING_SERVICE_LINKED, "service linked to its provider"),
    (SHARING_PROVIDER_USER_ADDED, "provider portal login made"),
    (SHARING_REQUESTED, "data access requested"),
    (SHARING_LISTED, "minimal package listed"),
    (SHARING_APPROVED, "data access approved"),
    (SHARING_REJECTED, "data access rejected"),
    (SHARING_REVOKED, "data access revoked"),
    (SHARING_BLOCKED, "service blocked"),
    (SHARING_UNBLOCKED, "service unblocked"),
    (SHARING_EXPORTED, "roster data exported to a service"),
    (LICENCE_GRANTED, "licence granted"),
    (LICENCE_WITHDRAWN, "licence withdrawn"),
    (LICENCE_LISTED, "licences listed with the persons they name"),
    (LIFECYCLE_CLOSE_UNUSED, "unused accounts closed"),
    (LIFECYCLE_ARCHIVE_INACTIVE, "inactive persons archived"),
    (LIFECYCLE_ERASE_EXPIRED, "expired persons erased"),
    (LIFECYCLE_PURGE_IMPORT_FILES, "old import files removed"),
    (LIFECYCLE_CHANGES_RETENTION, "old changes feed rows removed"),
    (PERSON_EXPORTED, "person's data exported"),
    (PERSON_ERASED, "person erased"),
    (DATABASE_ANONYMIZED, "anonymised copy written"),
    (API_CHANGES, "changes feed read by a service"),
    (STAFF_FORMER_LISTED, "former persons viewed by an admin"),
];

/// Whether `action` is a registered action.
pub fn is_known(action: &str) -> bool {
    ALL.iter().any(|(a, _)| *a == action)
}

#[cfg(test)]
mod tests;
