//! The OpenID Connect provider's tables on SQLite.

use super::{db, head, insert_audit, CachedRow, SqliteStore};
use crate::group::Write;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tilgang_core::audit::{chain, NewEvent};
use tilgang_core::oidc::claims::{ClaimsSource, GroupClaim, InstitutionClaim};
use tilgang_core::oidc::keys::{Alg, KeyRecord};
use tilgang_core::oidc::{CodeRecord, GrantData, Package, Service, TokenKind, TokenRecord};
use tilgang_core::store::oidc::{OidcStore, Pending, Redeemed, Rotated};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

fn audit(conn: &Connection, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
    let (sealed, _) = chain::seal(head(conn)?, at, events);
    insert_audit(conn, &sealed)
}

fn conv(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn h32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().unwrap_or([0; 32])
}

const SERVICE: &str =
    "SELECT client_id, name, secret_hash, jwks_uri, jwks, redirect_uris, post_logout_uris, grants,
    package, min_acr, public_client, id_token_alg, pairwise_salt, created_at FROM oidc_services";

fn service_row(r: &Row<'_>) -> rusqlite::Result<Service> {
    let redirect: String = r.get(5)?;
    let logout: String = r.get(6)?;
    let grants: String = r.get(7)?;
    let package: String = r.get(8)?;
    Ok(Service {
        client_id: r.get(0)?,
        name: r.get(1)?,
        secret_hash: r.get::<_, Option<Vec<u8>>>(2)?.map(h32),
        jwks_uri: r.get(3)?,
        jwks: r.get(4)?,
        redirect_uris: serde_json::from_str(&redirect).map_err(|e| conv(5, e))?,
        post_logout_redirect_uris: serde_json::from_str(&logout).map_err(|e| conv(6, e))?,
        grants: grants
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        package: Package::parse(&package).unwrap_or(Package::Minimal),
        min_acr: r.get(9)?,
        public: r.get(10)?,
        id_token_alg: r.get(11)?,
        pairwise_salt: h32(r.get(12)?),
        created_at: r.get(13)?,
    })
}

const KEY: &str =
    "SELECT kid, alg, private_sealed, public_jwk, created_at, not_after, retire_at FROM oidc_keys";

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let alg: String = r.get(1)?;
    Ok(KeyRecord {
        kid: r.get(0)?,
        alg: Alg::parse(&alg).unwrap_or(Alg::RS256),
        private_sealed: r.get(2)?,
        public_jwk: r.get(3)?,
        created_at: r.get(4)?,
        not_after: r.get(5)?,
        retire_at: r.get(6)?,
    })
}

const CODE: &str =
    "SELECT code_hash, client_id, grant_data, created_at, expires_at, used_at FROM oidc_codes";

fn code_row(r: &Row<'_>) -> rusqlite::Result<CodeRecord> {
    let grant: String = r.get(2)?;
    Ok(CodeRecord {
        code_hash: h32(r.get(0)?),
        client_id: r.get(1)?,
        grant: serde_json::from_str(&grant).map_err(|e| conv(2, e))?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        used_at: r.get(5)?,
    })
}

const TOKEN: &str = "SELECT token_hash, kind, client_id, family, grant_data, created_at, expires_at, used_at, revoked_at
    FROM oidc_tokens";

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let kind: String = r.get(1)?;
    let grant: String = r.get(4)?;
    Ok(TokenRecord {
        token_hash: h32(r.get(0)?),
        kind: TokenKind::parse(&kind).unwrap_or(TokenKind::Access),
        client_id: r.get(2)?,
        family: r.get(3)?,
        grant: serde_json::from_str::<GrantData>(&grant).map_err(|e| conv(4, e))?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        used_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::store)
}

pub(crate) fn insert_tokens(conn: &Connection, tokens: &[TokenRecord]) -> Result<()> {
    if tokens.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO oidc_tokens (token_hash, kind, client_id, family, person_id, grant_data, created_at,
             expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .map_err(db)?;
    for t in tokens {
        stmt.execute(params![
            &t.token_hash[..],
            t.kind.as_str(),
            t.client_id,
            t.family,
            t.grant.person_id,
            json(&t.grant)?,
            t.created_at,
            t.expires_at,
            t.revoked_at
        ])
        .map_err(db)?;
    }
    Ok(())
}

fn revoke_family(conn: &Connection, family: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE oidc_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, now],
    )
    .map_err(db)
    .map(drop)
}

#[async_trait]
impl OidcStore for SqliteStore {
    async fn add_service(&self, s: &Service, at: OffsetDateTime, event: NewEvent) -> Result<()> {
        let s = s.clone();
        self.write(move |conn| {
            let taken: bool = conn
                .cached_row("SELECT EXISTS (SELECT 1 FROM oidc_services WHERE client_id = ?1)", [&s.client_id], |r| r.get(0))
                .map_err(db)?;
            if taken {
                return Err(Error::Config(format!("a service with client id {} exists", s.client_id)));
            }
            conn.execute(
                "INSERT INTO oidc_services (client_id, name, secret_hash, jwks_uri, jwks, redirect_uris, post_logout_uris,
                 grants, package, min_acr, public_client, id_token_alg, pairwise_salt, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    s.client_id, s.name, s.secret_hash.map(|h| h.to_vec()), s.jwks_uri, s.jwks,
                    json(&s.redirect_uris)?, json(&s.post_logout_redirect_uris)?, s.grants.join(" "),
                    s.package.as_str(), s.min_acr, s.public, s.id_token_alg, &s.pairwise_salt[..], s.created_at
                ],
            )
            .map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn service(&self, client_id: &str) -> Result<Option<Service>> {
        let id = client_id.to_owned();
        self.read(move |conn| service_on(conn, &id)).await
    }

    async fn services(&self) -> Result<Vec<Service>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("{SERVICE} ORDER BY client_id"))
                .map_err(db)?;
            let rows = stmt.query_map([], service_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn remove_service(
        &self,
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let id = client_id.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM oidc_services WHERE client_id = ?1", [&id])
                .map_err(db)?;
            if n == 0 {
                return Ok(false);
            }
            for table in [
                "oidc_codes",
                "oidc_tokens",
                "oidc_pending",
                "oidc_role_choices",
            ] {
                conn.execute(&format!("DELETE FROM {table} WHERE client_id = ?1"), [&id])
                    .map_err(db)?;
            }
            audit(conn, at, vec![event])?;
            Ok(true)
        })
        .await
    }

    async fn signing_keys(&self, now: i64) -> Result<Vec<KeyRecord>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{KEY} WHERE retire_at IS NULL OR retire_at > ?1 ORDER BY created_at"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([now], key_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn rotate_keys(
        &self,
        new: &[KeyRecord],
        only_if_none: bool,
        retire_at: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let new = new.to_vec();
        self.write(move |conn| {
            let now = at.unix_timestamp();
            for k in &new {
                if only_if_none {
                    let exists: bool = conn
                        .cached_row(
                            "SELECT EXISTS (SELECT 1 FROM oidc_keys WHERE alg = ?1 AND (not_after IS NULL OR not_after > ?2))",
                            params![k.alg.as_str(), now],
                            |r| r.get(0),
                        )
                        .map_err(db)?;
                    if exists {
                        return Ok(false);
                    }
                }
                conn.execute(
                    "UPDATE oidc_keys SET not_after = ?2, retire_at = ?3 WHERE alg = ?1 AND (not_after IS NULL OR not_after > ?2)",
                    params![k.alg.as_str(), now, retire_at],
                )
                .map_err(db)?;
            }
            conn.execute("DELETE FROM oidc_keys WHERE retire_at <= ?1", [now]).map_err(db)?;
            for k in &new {
                conn.execute(
                    "INSERT INTO oidc_keys (kid, alg, private_sealed, public_jwk, created_at, not_after, retire_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![k.kid, k.alg.as_str(), k.private_sealed, k.public_jwk, k.created_at, k.not_after, k.retire_at],
                )
                .map_err(db)?;
            }
            audit(conn, at, vec![event])?;
            Ok(true)
        })
        .await
    }

    async fn put_pending(&self, id_hash: &[u8; 32], p: &Pending) -> Result<()> {
        let (id, p) = (id_hash.to_vec(), p.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO oidc_pending (id_hash, client_id, request, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, p.client_id, p.request, p.created_at, p.expires_at],
            )
            .map_err(db)
            .map(drop)
        })
        .await
    }

    async fn pending(&self, id_hash: &[u8; 32], now: i64) -> Result<Option<Pending>> {
        let id = id_hash.to_vec();
        self.read(move |conn| {
            conn.cached_row(
                "SELECT client_id, request, created_at, expires_at FROM oidc_pending WHERE id_hash = ?1 AND expires_at > ?2",
                params![id, now],
                |r| {
                    Ok(Pending {
                        client_id: r.get(0)?,
                        request: r.get(1)?,
                        created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn issue_code(
        &self,
        code: &CodeRecord,
        completes: Option<&[u8; 32]>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let (c, completes) = (code.clone(), completes.map(|h| h.to_vec()));
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO oidc_codes (code_hash, client_id, grant_data, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&c.code_hash[..], c.client_id, json(&c.grant)?, c.created_at, c.expires_at],
            )
            .map_err(db)?;
            if let Some(p) = completes {
                conn.execute("DELETE FROM oidc_pending WHERE id_hash = ?1", [p]).map_err(db)?;
            }
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn code(&self, code_hash: &[u8; 32]) -> Result<Option<CodeRecord>> {
        let h = code_hash.to_vec();
        self.read(move |conn| {
            conn.prepare_cached(&format!("{CODE} WHERE code_hash = ?1"))
                .map_err(db)?
                .query_row([h], code_row)
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Redeemed> {
        let (h, tokens) = (code_hash.to_vec(), tokens.to_vec());
        self.write(move |conn| {
            let now = at.unix_timestamp();
            let family = tokens.first().map(|t| t.family.clone()).unwrap_or_default();
            let n = conn
                .execute(
                    "UPDATE oidc_codes SET used_at = ?2, family = ?3 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                    params![h, now, family],
                )
                .map_err(db)?;
            if n == 1 {
                insert_tokens(conn, &tokens)?;
                audit(conn, at, vec![event])?;
                return Ok(Redeemed::Issued);
            }
            let used: Option<Option<String>> = conn
                .cached_row("SELECT family FROM oidc_codes WHERE code_hash = ?1 AND used_at IS NOT NULL", [&h], |r| r.get(0))
                .optional()
                .map_err(db)?;
            match used {
                Some(family) => {
                    if let Some(f) = family {
                        revoke_family(conn, &f, now)?;
                    }
                    audit(conn, at, vec![reuse_event])?;
                    Ok(Redeemed::Reused)
                }
                None => Ok(Redeemed::Invalid),
            }
        })
        .await
    }

    async fn issue_tokens(
        &self,
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        self.write_grouped(Write {
            tokens: tokens.to_vec(),
            at,
            events: vec![event],
        })
        .await
    }

    async fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        let h = *token_hash;
        self.read(move |conn| token_on(conn, &h)).await
    }

    async fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Rotated> {
        let (h, tokens) = (token_hash.to_vec(), tokens.to_vec());
        self.write(move |conn| {
            let now = at.unix_timestamp();
            let n = conn
                .execute(
                    "UPDATE oidc_tokens SET used_at = ?2 WHERE token_hash = ?1 AND kind = 'refresh'
                     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2",
                    params![h, now],
                )
                .map_err(db)?;
            if n == 1 {
                insert_tokens(conn, &tokens)?;
                audit(conn, at, vec![event])?;
                return Ok(Rotated::Issued);
            }
            let family: Option<String> = conn
                .cached_row(
                    "SELECT family FROM oidc_tokens WHERE token_hash = ?1 AND kind = 'refresh' AND (used_at IS NOT NULL OR revoked_at IS NOT NULL)",
                    [&h],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            match family {
                Some(f) => {
                    revoke_family(conn, &f, now)?;
                    audit(conn, at, vec![reuse_event])?;
                    Ok(Rotated::Reused)
                }
                None => Ok(Rotated::Invalid),
            }
        })
        .await
    }

    async fn revoke_token(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let (h, client) = (token_hash.to_vec(), client_id.to_owned());
        self.write(move |conn| {
            let now = at.unix_timestamp();
            let found: Option<(String, String)> = conn
                .cached_row(
                    "SELECT kind, family FROM oidc_tokens WHERE token_hash = ?1 AND client_id = ?2",
                    params![h, client],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((kind, family)) = found else {
                return Ok(false);
            };
            if kind == "refresh" {
                revoke_family(conn, &family, now)?;
            } else {
                conn.execute(
                    "UPDATE oidc_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
                    params![h, now],
                )
                .map_err(db)?;
            }
            audit(conn, at, vec![event])?;
            Ok(true)
        })
        .await
    }

    async fn use_assertion(
        &self,
        client_id: &str,
        jti_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool> {
        let (client, h) = (client_id.to_owned(), jti_hash.to_vec());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO oidc_assertions (client_id, jti_hash, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (client_id, jti_hash) DO NOTHING",
                    params![client, h, expires_at],
                )
                .map_err(db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_oidc(&self, before: i64) -> Result<u64> {
        self.write(move |conn| {
            let mut n = 0;
            for sql in [
                "DELETE FROM oidc_pending WHERE expires_at < ?1",
                "DELETE FROM oidc_codes WHERE expires_at < ?1",
                "DELETE FROM oidc_tokens WHERE expires_at < ?1",
                "DELETE FROM oidc_assertions WHERE expires_at < ?1",
            ] {
                n += conn.execute(sql, [before]).map_err(db)? as u64;
            }
            Ok(n)
        })
        .await
    }

    async fn claims_source(&self, person_id: i64) -> Result<Option<ClaimsSource>> {
        self.read(move |conn| claims_source_on(conn, person_id))
            .await
    }

    async fn role_choice(&self, person_id: i64, client_id: &str) -> Result<Option<String>> {
        let id = client_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT role FROM oidc_role_choices WHERE person_id = ?1 AND client_id = ?2",
            )
            .map_err(db)?
            .query_row(params![person_id, id], |r| r.get(0))
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn role_choices(&self, person_id: i64) -> Result<Vec<(String, String, String)>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT c.client_id, s.name, c.role FROM oidc_role_choices c
                     JOIN oidc_services s ON s.client_id = c.client_id
                     WHERE c.person_id = ?1 ORDER BY s.name, c.client_id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([person_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn set_role_choice(
        &self,
        person_id: i64,
        client_id: &str,
        role: Option<&str>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let (id, role) = (client_id.to_owned(), role.map(str::to_owned));
        self.write(move |conn| {
            match role {
                Some(role) => conn.execute(
                    "INSERT INTO oidc_role_choices (person_id, client_id, role, chosen_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (person_id, client_id) DO UPDATE SET role = excluded.role, chosen_at = excluded.chosen_at",
                    params![person_id, id, role, at.unix_timestamp()],
                ),
                None => conn.execute(
                    "DELETE FROM oidc_role_choices WHERE person_id = ?1 AND client_id = ?2",
                    params![person_id, id],
                ),
            }
            .map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }
}

/// Shared with PostgreSQL: roles per institution, actor groups in order,
/// contact persons' institutions.
pub(crate) fn assemble(
    src: &mut ClaimsSource,
    roles: Vec<(String, String, String, String)>,
    contact_institutions: Vec<(String, String)>,
    groups: Vec<GroupClaim>,
) {
    for (number, name, role, actor) in roles {
        if !src.actors.contains(&actor) {
            src.actors.push(actor);
        }
        match src.institutions.iter_mut().find(|i| i.number == number) {
            Some(i) => i.roles.push(role),
            None => src.institutions.push(InstitutionClaim {
                number,
                name,
                roles: vec![role],
            }),
        }
    }
    if !contact_institutions.is_empty() {
        src.actors.push("Kontaktperson".into());
    }
    for (number, name) in contact_institutions {
        match src.institutions.iter_mut().find(|i| i.number == number) {
            Some(i) => i.roles.push("Kontaktperson".into()),
            None => src.institutions.push(InstitutionClaim {
                number,
                name,
                roles: vec!["Kontaktperson".into()],
            }),
        }
    }
    src.groups = groups;
}

pub(super) fn service_on(conn: &Connection, client_id: &str) -> Result<Option<Service>> {
    conn.prepare_cached(&format!("{SERVICE} WHERE client_id = ?1"))
        .map_err(db)?
        .query_row([client_id], service_row)
        .optional()
        .map_err(db)
}

pub(super) fn token_on(conn: &Connection, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
    conn.prepare_cached(&format!("{TOKEN} WHERE token_hash = ?1"))
        .map_err(db)?
        .query_row([&token_hash[..]], token_row)
        .optional()
        .map_err(db)
}

pub(super) fn claims_source_on(conn: &Connection, person_id: i64) -> Result<Option<ClaimsSource>> {
    let base = conn
        .cached_row(
            "SELECT user_id, given_name, family_name, protected, alias_given_name, alias_family_name, email
             FROM persons WHERE id = ?1",
            [person_id],
            |r| {
                let alias = match (r.get::<_, Option<String>>(4)?, r.get::<_, Option<String>>(5)?) {
                    (Some(g), Some(f)) => Some((g, f)),
                    _ => None,
                };
                Ok(ClaimsSource {
                    person_id,
                    user_id: r.get(0)?,
                    given_name: r.get(1)?,
                    family_name: r.get(2)?,
                    protected: r.get(3)?,
                    alias,
                    email: r.get(6)?,
                    ..Default::default()
                })
            },
        )
        .optional()
        .map_err(db)?;
    let Some(mut src) = base else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT i.number, i.name, r.role, r.actor FROM roles r JOIN institutions i ON i.id = r.institution_id
             WHERE r.person_id = ?1 AND r.ended_on IS NULL ORDER BY i.number, r.role",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([person_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut contact_insts = conn
        .prepare_cached(
            "SELECT DISTINCT i.number, i.name FROM contacts c JOIN institutions i ON i.id = c.institution_id
             WHERE c.contact_id = ?1 AND c.ended_on IS NULL ORDER BY i.number",
        )
        .map_err(db)?
        .query_map([person_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let groups = conn
        .prepare_cached(
            "SELECT i.number, g.ext_id, g.name, g.kind FROM memberships m JOIN roster_groups g ON g.id = m.group_id
             JOIN institutions i ON i.id = g.institution_id
             WHERE m.person_id = ?1 AND m.ended_on IS NULL AND g.ended_on IS NULL ORDER BY i.number, g.ext_id",
        )
        .map_err(db)?
        .query_map([person_id], |r| {
            Ok(GroupClaim { institution: r.get(0)?, id: r.get(1)?, name: r.get(2)?, kind: r.get(3)? })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    assemble(&mut src, rows, std::mem::take(&mut contact_insts), groups);
    Ok(Some(src))
}
