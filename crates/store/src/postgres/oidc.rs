//! The OpenID Connect provider's tables on PostgreSQL: the SQLite
//! implementation (`sqlite/oidc.rs`) query for query, each change one
//! transaction with its audit events.

use super::{db, execute, query, read_head, write_audit, PgStore};
use crate::group::Write;
use crate::sqlite::oidc::assemble;
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::audit::{chain, NewEvent};
use tilgang_core::oidc::claims::{ClaimsSource, GroupClaim};
use tilgang_core::oidc::keys::{Alg, KeyRecord};
use tilgang_core::oidc::{CodeRecord, Package, Service, TokenKind, TokenRecord};
use tilgang_core::store::oidc::{OidcStore, Pending, Redeemed, Rotated};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;
use tokio_postgres::Row;

async fn audit<C: GenericClient>(c: &C, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
    let (sealed, _) = chain::seal(read_head(c, true).await?, at, events);
    write_audit(c, &sealed).await
}

fn h32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().unwrap_or([0; 32])
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(Error::store)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::store)
}

const SERVICE: &str =
    "SELECT client_id, name, secret_hash, jwks_uri, jwks, redirect_uris, post_logout_uris, grants,
    package, min_acr, public_client, id_token_alg, pairwise_salt, created_at FROM oidc_services";

fn service_row(r: &Row) -> Result<Service> {
    let redirect: String = r.try_get(5).map_err(db)?;
    let logout: String = r.try_get(6).map_err(db)?;
    let grants: String = r.try_get(7).map_err(db)?;
    let package: String = r.try_get(8).map_err(db)?;
    Ok(Service {
        client_id: r.try_get(0).map_err(db)?,
        name: r.try_get(1).map_err(db)?,
        secret_hash: r.try_get::<_, Option<Vec<u8>>>(2).map_err(db)?.map(h32),
        jwks_uri: r.try_get(3).map_err(db)?,
        jwks: r.try_get(4).map_err(db)?,
        redirect_uris: from_json(&redirect)?,
        post_logout_redirect_uris: from_json(&logout)?,
        grants: grants
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        package: Package::parse(&package).unwrap_or(Package::Minimal),
        min_acr: r.try_get(9).map_err(db)?,
        public: r.try_get(10).map_err(db)?,
        id_token_alg: r.try_get(11).map_err(db)?,
        pairwise_salt: h32(r.try_get(12).map_err(db)?),
        created_at: r.try_get(13).map_err(db)?,
    })
}

const KEY: &str =
    "SELECT kid, alg, private_sealed, public_jwk, created_at, not_after, retire_at FROM oidc_keys";

fn key_row(r: &Row) -> Result<KeyRecord> {
    let alg: String = r.try_get(1).map_err(db)?;
    Ok(KeyRecord {
        kid: r.try_get(0).map_err(db)?,
        alg: Alg::parse(&alg).unwrap_or(Alg::RS256),
        private_sealed: r.try_get(2).map_err(db)?,
        public_jwk: r.try_get(3).map_err(db)?,
        created_at: r.try_get(4).map_err(db)?,
        not_after: r.try_get(5).map_err(db)?,
        retire_at: r.try_get(6).map_err(db)?,
    })
}

const CODE: &str =
    "SELECT code_hash, client_id, grant_data, created_at, expires_at, used_at FROM oidc_codes";

fn code_row(r: &Row) -> Result<CodeRecord> {
    let grant: String = r.try_get(2).map_err(db)?;
    Ok(CodeRecord {
        code_hash: h32(r.try_get(0).map_err(db)?),
        client_id: r.try_get(1).map_err(db)?,
        grant: from_json(&grant)?,
        created_at: r.try_get(3).map_err(db)?,
        expires_at: r.try_get(4).map_err(db)?,
        used_at: r.try_get(5).map_err(db)?,
    })
}

const TOKEN: &str = "SELECT token_hash, kind, client_id, family, grant_data, created_at, expires_at, used_at, revoked_at
    FROM oidc_tokens";

fn token_row(r: &Row) -> Result<TokenRecord> {
    let kind: String = r.try_get(1).map_err(db)?;
    let grant: String = r.try_get(4).map_err(db)?;
    Ok(TokenRecord {
        token_hash: h32(r.try_get(0).map_err(db)?),
        kind: TokenKind::parse(&kind).unwrap_or(TokenKind::Access),
        client_id: r.try_get(2).map_err(db)?,
        family: r.try_get(3).map_err(db)?,
        grant: from_json(&grant)?,
        created_at: r.try_get(5).map_err(db)?,
        expires_at: r.try_get(6).map_err(db)?,
        used_at: r.try_get(7).map_err(db)?,
        revoked_at: r.try_get(8).map_err(db)?,
    })
}

/// Stores tokens in one round trip, however many.
pub(crate) async fn insert_tokens<C: GenericClient>(c: &C, tokens: &[TokenRecord]) -> Result<()> {
    if tokens.is_empty() {
        return Ok(());
    }
    let hash: Vec<&[u8]> = tokens.iter().map(|t| &t.token_hash[..]).collect();
    let kind: Vec<&str> = tokens.iter().map(|t| t.kind.as_str()).collect();
    let client: Vec<&str> = tokens.iter().map(|t| t.client_id.as_str()).collect();
    let family: Vec<&str> = tokens.iter().map(|t| t.family.as_str()).collect();
    let person: Vec<Option<i64>> = tokens.iter().map(|t| t.grant.person_id).collect();
    let grant = tokens
        .iter()
        .map(|t| json(&t.grant))
        .collect::<Result<Vec<String>>>()?;
    let created: Vec<i64> = tokens.iter().map(|t| t.created_at).collect();
    let expires: Vec<i64> = tokens.iter().map(|t| t.expires_at).collect();
    let revoked: Vec<Option<i64>> = tokens.iter().map(|t| t.revoked_at).collect();
    execute(
        c,
        "INSERT INTO oidc_tokens (token_hash, kind, client_id, family, person_id, grant_data, created_at,
         expires_at, revoked_at)
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                              $7::bigint[], $8::bigint[], $9::bigint[])
         ON CONFLICT (token_hash) DO NOTHING",
        &[&hash, &kind, &client, &family, &person, &grant, &created, &expires, &revoked],
    )
    .await?;
    Ok(())
}

async fn revoke_family<C: GenericClient>(c: &C, family: &str, now: i64) -> Result<()> {
    execute(
        c,
        "UPDATE oidc_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
        &[&family, &now],
    )
    .await
    .map(drop)
}

/// How using a single-use grant (a code, a refresh token) went.
enum Once {
    Issued,
    Reused,
    Invalid,
}

impl PgStore {
    /// Use once or revoke the family, in one transaction: `claim` marks
    /// the grant (`$1`) used at `$2` (`$3`: the new family, when given) and
    /// matches one row only while it is live; then `tokens` are stored
    /// with the first event. Otherwise `used` finds the family of a grant
    /// used before, whose every token is revoked, with the second event.
    #[allow(clippy::too_many_arguments)]
    async fn use_once(
        &self,
        claim: &str,
        family: Option<&String>,
        used: &str,
        hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        (event, reuse_event): (NewEvent, NewEvent),
    ) -> Result<Once> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        let n = match family {
            Some(f) => execute(&tx, claim, &[&&hash[..], &now, f]).await?,
            None => execute(&tx, claim, &[&&hash[..], &now]).await?,
        };
        let outcome = if n == 1 {
            insert_tokens(&tx, tokens).await?;
            audit(&tx, at, vec![event]).await?;
            Once::Issued
        } else {
            match query(&tx, used, &[&&hash[..]]).await?.first() {
                Some(r) => {
                    if let Some(f) = r.try_get::<_, Option<String>>(0).map_err(db)? {
                        revoke_family(&tx, &f, now).await?;
                    }
                    audit(&tx, at, vec![reuse_event]).await?;
                    Once::Reused
                }
                None => Once::Invalid,
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }
}

#[async_trait]
impl OidcStore for PgStore {
    async fn add_service(&self, s: &Service, at: OffsetDateTime, event: NewEvent) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "INSERT INTO oidc_services (client_id, name, secret_hash, jwks_uri, jwks, redirect_uris, post_logout_uris,
             grants, package, min_acr, public_client, id_token_alg, pairwise_salt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (client_id) DO NOTHING",
            &[&s.client_id, &s.name, &s.secret_hash.map(|h| h.to_vec()), &s.jwks_uri, &s.jwks,
              &json(&s.redirect_uris)?, &json(&s.post_logout_redirect_uris)?, &s.grants.join(" "),
              &s.package.as_str(), &s.min_acr, &s.public, &s.id_token_alg, &&s.pairwise_salt[..], &s.created_at],
        )
        .await?;
        if n == 0 {
            return Err(Error::Config(format!(
                "a service with client id {} exists",
                s.client_id
            )));
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn service(&self, client_id: &str) -> Result<Option<Service>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{SERVICE} WHERE client_id = $1"),
            &[&client_id],
        )
        .await?;
        rows.first().map(service_row).transpose()
    }

    async fn services(&self) -> Result<Vec<Service>> {
        let c = self.conn().await?;
        let rows = query(&c, &format!("{SERVICE} ORDER BY client_id"), &[]).await?;
        rows.iter().map(service_row).collect()
    }

    async fn remove_service(
        &self,
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "DELETE FROM oidc_services WHERE client_id = $1",
            &[&client_id],
        )
        .await?;
        if n == 0 {
            return Ok(false);
        }
        for table in [
            "oidc_codes",
            "oidc_tokens",
            "oidc_pending",
            "oidc_role_choices",
        ] {
            execute(
                &tx,
                &format!("DELETE FROM {table} WHERE client_id = $1"),
                &[&client_id],
            )
            .await?;
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn signing_keys(&self, now: i64) -> Result<Vec<KeyRecord>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{KEY} WHERE retire_at IS NULL OR retire_at > $1 ORDER BY created_at"),
            &[&now],
        )
        .await?;
        rows.iter().map(key_row).collect()
    }

    async fn rotate_keys(
        &self,
        new: &[KeyRecord],
        only_if_none: bool,
        retire_at: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Replicas starting together: one generates, the others see its keys.
        tx.batch_execute("LOCK TABLE oidc_keys IN EXCLUSIVE MODE")
            .await
            .map_err(db)?;
        let now = at.unix_timestamp();
        for k in new {
            if only_if_none {
                let rows = query(
                    &tx,
                    "SELECT 1 FROM oidc_keys WHERE alg = $1 AND (not_after IS NULL OR not_after > $2) LIMIT 1",
                    &[&k.alg.as_str(), &now],
                )
                .await?;
                if !rows.is_empty() {
                    return Ok(false);
                }
            }
            execute(
                &tx,
                "UPDATE oidc_keys SET not_after = $2, retire_at = $3 WHERE alg = $1 AND (not_after IS NULL OR not_after > $2)",
                &[&k.alg.as_str(), &now, &retire_at],
            )
            .await?;
        }
        execute(&tx, "DELETE FROM oidc_keys WHERE retire_at <= $1", &[&now]).await?;
        for k in new {
            execute(
                &tx,
                "INSERT INTO oidc_keys (kid, alg, private_sealed, public_jwk, created_at, not_after, retire_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&k.kid, &k.alg.as_str(), &k.private_sealed, &k.public_jwk, &k.created_at, &k.not_after, &k.retire_at],
            )
            .await?;
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn put_pending(&self, id_hash: &[u8; 32], p: &Pending) -> Result<()> {
        let c = self.conn().await?;
        execute(
            &c,
            "INSERT INTO oidc_pending (id_hash, client_id, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&&id_hash[..], &p.client_id, &p.request, &p.created_at, &p.expires_at],
        )
        .await
        .map(drop)
    }

    async fn pending(&self, id_hash: &[u8; 32], now: i64) -> Result<Option<Pending>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT client_id, request, created_at, expires_at FROM oidc_pending WHERE id_hash = $1 AND expires_at > $2",
            &[&&id_hash[..], &now],
        )
        .await?;
        rows.first()
            .map(|r| {
                Ok(Pending {
                    client_id: r.try_get(0).map_err(db)?,
                    request: r.try_get(1).map_err(db)?,
                    created_at: r.try_get(2).map_err(db)?,
                    expires_at: r.try_get(3).map_err(db)?,
                })
            })
            .transpose()
    }

    async fn issue_code(
        &self,
        code: &CodeRecord,
        completes: Option<&[u8; 32]>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        execute(
            &tx,
            "INSERT INTO oidc_codes (code_hash, client_id, grant_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&&code.code_hash[..], &code.client_id, &json(&code.grant)?, &code.created_at, &code.expires_at],
        )
        .await?;
        if let Some(p) = completes {
            execute(
                &tx,
                "DELETE FROM oidc_pending WHERE id_hash = $1",
                &[&&p[..]],
            )
            .await?;
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn code(&self, code_hash: &[u8; 32]) -> Result<Option<CodeRecord>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{CODE} WHERE code_hash = $1"),
            &[&&code_hash[..]],
        )
        .await?;
        rows.first().map(code_row).transpose()
    }

    async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Redeemed> {
        // The code remembers the family its tokens got, for reuse.
        let family = tokens.first().map(|t| t.family.clone()).unwrap_or_default();
        let once = self
            .use_once(
                "UPDATE oidc_codes SET used_at = $2, family = $3 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
                Some(&family),
                "SELECT family FROM oidc_codes WHERE code_hash = $1 AND used_at IS NOT NULL",
                code_hash,
                tokens,
                at,
                (event, reuse_event),
            )
            .await?;
        Ok(match once {
            Once::Issued => Redeemed::Issued,
            Once::Reused => Redeemed::Reused,
            Once::Invalid => Redeemed::Invalid,
        })
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
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{TOKEN} WHERE token_hash = $1"),
            &[&&token_hash[..]],
        )
        .await?;
        rows.first().map(token_row).transpose()
    }

    async fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Rotated> {
        let once = self
            .use_once(
                "UPDATE oidc_tokens SET used_at = $2 WHERE token_hash = $1 AND kind = 'refresh'
                 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
                None,
                "SELECT family FROM oidc_tokens WHERE token_hash = $1 AND kind = 'refresh' AND (used_at IS NOT NULL OR revoked_at IS NOT NULL)",
                token_hash,
                tokens,
                at,
                (event, reuse_event),
            )
            .await?;
        Ok(match once {
            Once::Issued => Rotated::Issued,
            Once::Reused => Rotated::Reused,
            Once::Invalid => Rotated::Invalid,
        })
    }

    async fn revoke_token(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        let rows = query(
            &tx,
            "SELECT kind, family FROM oidc_tokens WHERE token_hash = $1 AND client_id = $2",
            &[&&token_hash[..], &client_id],
        )
        .await?;
        let Some(r) = rows.first() else {
            return Ok(false);
        };
        let kind: String = r.try_get(0).map_err(db)?;
        let family: String = r.try_get(1).map_err(db)?;
        if kind == "refresh" {
            revoke_family(&tx, &family, now).await?;
        } else {
            execute(
                &tx,
                "UPDATE oidc_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&&token_hash[..], &now],
            )
            .await?;
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn use_assertion(
        &self,
        client_id: &str,
        jti_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool> {
        let c = self.conn().await?;
        let n = execute(
            &c,
            "INSERT INTO oidc_assertions (client_id, jti_hash, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti_hash) DO NOTHING",
            &[&client_id, &&jti_hash[..], &expires_at],
        )
        .await?;
        Ok(n == 1)
    }

    async fn purge_oidc(&self, before: i64) -> Result<u64> {
        let c = self.conn().await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM oidc_pending WHERE expires_at < $1",
            "DELETE FROM oidc_codes WHERE expires_at < $1",
            "DELETE FROM oidc_tokens WHERE expires_at < $1",
            "DELETE FROM oidc_assertions WHERE expires_at < $1",
        ] {
            n += execute(&c, sql, &[&before]).await?;
        }
        Ok(n)
    }

    async fn claims_source(&self, person_id: i64) -> Result<Option<ClaimsSource>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT user_id, given_name, family_name, protected, alias_given_name, alias_family_name, email
             FROM persons WHERE id = $1",
            &[&person_id],
        )
        .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let alias = match (
            r.try_get::<_, Option<String>>(4).map_err(db)?,
            r.try_get::<_, Option<String>>(5).map_err(db)?,
        ) {
            (Some(g), Some(f)) => Some((g, f)),
            _ => None,
        };
        let mut src = ClaimsSource {
            person_id,
            user_id: r.try_get(0).map_err(db)?,
            given_name: r.try_get(1).map_err(db)?,
            family_name: r.try_get(2).map_err(db)?,
            protected: r.try_get(3).map_err(db)?,
            alias,
            email: r.try_get(6).map_err(db)?,
            ..Default::default()
        };
        let roles = query(
            &c,
            "SELECT i.number, i.name, r.role, r.actor FROM roles r JOIN institutions i ON i.id = r.institution_id
             WHERE r.person_id = $1 AND r.ended_on IS NULL ORDER BY i.number, r.role",
            &[&person_id],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?, r.try_get(2).map_err(db)?, r.try_get(3).map_err(db)?)))
        .collect::<Result<Vec<_>>>()?;
        let contacts = query(
            &c,
            "SELECT DISTINCT i.number, i.name FROM contacts c JOIN institutions i ON i.id = c.institution_id
             WHERE c.contact_id = $1 AND c.ended_on IS NULL ORDER BY i.number",
            &[&person_id],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
        .collect::<Result<Vec<_>>>()?;
        let groups = query(
            &c,
            "SELECT i.number, g.ext_id, g.name, g.kind FROM memberships m JOIN roster_groups g ON g.id = m.group_id
             JOIN institutions i ON i.id = g.institution_id
             WHERE m.person_id = $1 AND m.ended_on IS NULL AND g.ended_on IS NULL ORDER BY i.number, g.ext_id",
            &[&person_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(GroupClaim {
                institution: r.try_get(0).map_err(db)?,
                id: r.try_get(1).map_err(db)?,
                name: r.try_get(2).map_err(db)?,
                kind: r.try_get(3).map_err(db)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        assemble(&mut src, roles, contacts, groups);
        Ok(Some(src))
    }

    async fn role_choice(&self, person_id: i64, client_id: &str) -> Result<Option<String>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT role FROM oidc_role_choices WHERE person_id = $1 AND client_id = $2",
            &[&person_id, &client_id],
        )
        .await?;
        rows.first().map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn role_choices(&self, person_id: i64) -> Result<Vec<(String, String, String)>> {
        let c = self.conn().await?;
        query(
            &c,
            "SELECT c.client_id, s.name, c.role FROM oidc_role_choices c
             JOIN oidc_services s ON s.client_id = c.client_id
             WHERE c.person_id = $1 ORDER BY s.name, c.client_id",
            &[&person_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(db)?,
                r.try_get(1).map_err(db)?,
                r.try_get(2).map_err(db)?,
            ))
        })
        .collect()
    }

    async fn set_role_choice(
        &self,
        person_id: i64,
        client_id: &str,
        role: Option<&str>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        match role {
            Some(role) => {
                execute(
                    &tx,
                    "INSERT INTO oidc_role_choices (person_id, client_id, role, chosen_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (person_id, client_id) DO UPDATE SET role = excluded.role, chosen_at = excluded.chosen_at",
                    &[&person_id, &client_id, &role, &at.unix_timestamp()],
                )
                .await?
            }
            None => {
                execute(
                    &tx,
                    "DELETE FROM oidc_role_choices WHERE person_id = $1 AND client_id = $2",
                    &[&person_id, &client_id],
                )
                .await?
            }
        };
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }
}
