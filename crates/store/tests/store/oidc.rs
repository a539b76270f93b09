//! The OpenID Connect provider's store on both dialects: services, keys,
//! codes (single use, reuse revokes), refresh rotation with reuse
//! detection, revocation, and the audit events written with each change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::NewEvent;
use tilgang_core::oidc::keys::{self, Alg};
use tilgang_core::oidc::{
    hash_token, new_token, CodeRecord, GrantData, Package, Service, TokenKind,
};
use tilgang_core::store::oidc::{Redeemed, Rotated};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, TestDb};

fn service(id: &str) -> Service {
    Service {
        client_id: id.into(),
        name: "Matematik".into(),
        secret_hash: Some(hash_token("s3cret")),
        jwks_uri: None,
        jwks: None,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        package: Package::Small,
        min_acr: "urn:tilgang:loa:1".into(),
        public: false,
        id_token_alg: "RS256".into(),
        pairwise_salt: [5; 32],
        created_at: 1,
    }
}

fn ev(action: &str) -> NewEvent {
    NewEvent::new("test", action)
}

async fn audit_actions(db: &TestDb) -> Vec<String> {
    db.store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn services_are_stored_listed_and_removed_with_audit() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let at = db.clock.now();
        let s = service("svc");
        db.store
            .add_service(&s, at, ev("oidc.service.added"))
            .await
            .unwrap();
        assert!(
            db.store.add_service(&s, at, ev("x")).await.is_err(),
            "{d:?}"
        );
        assert_eq!(db.store.service("svc").await.unwrap(), Some(s.clone()));
        assert_eq!(db.store.services().await.unwrap().len(), 1);
        assert!(db
            .store
            .remove_service("svc", at, ev("oidc.service.removed"))
            .await
            .unwrap());
        assert!(!db.store.remove_service("svc", at, ev("x")).await.unwrap());
        assert_eq!(db.store.service("svc").await.unwrap(), None);
        let actions = audit_actions(&db).await;
        assert!(
            actions.ends_with(&["oidc.service.added".into(), "oidc.service.removed".into()]),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn keys_rotate_and_stay_published_until_retired() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let at = db.clock.now();
        let now = at.unix_timestamp();
        let k1 = keys::generate(Alg::ES256, &db.keys, now).unwrap();
        assert!(db
            .store
            .rotate_keys(std::slice::from_ref(&k1), true, now, at, ev("k"))
            .await
            .unwrap());
        let k2 = keys::generate(Alg::ES256, &db.keys, now).unwrap();
        // A second replica starting at the same time keeps the first key.
        assert!(!db
            .store
            .rotate_keys(std::slice::from_ref(&k2), true, now, at, ev("k"))
            .await
            .unwrap());
        let stored = db.store.signing_keys(now).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0], k1);
        assert!(!stored[0].public_jwk.contains("\"d\""));
        // Rotation: k1 stops signing now, stays published for an hour.
        assert!(db
            .store
            .rotate_keys(std::slice::from_ref(&k2), false, now + 3600, at, ev("k"))
            .await
            .unwrap());
        let stored = db.store.signing_keys(now).await.unwrap();
        assert_eq!(stored.len(), 2, "{d:?}");
        assert_eq!(keys::current(&stored, Alg::ES256, now).unwrap().kid, k2.kid);
        assert_eq!(db.store.signing_keys(now + 3600).await.unwrap().len(), 1);
    }
}

fn grant(person: i64) -> GrantData {
    GrantData {
        person_id: Some(person),
        scope: "openid".into(),
        redirect_uri: "https://rp.example/cb".into(),
        acr: "urn:tilgang:loa:1".into(),
        amr: vec!["pwd".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_code_is_single_use_and_reuse_revokes_its_tokens() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        db.store
            .add_service(&service("svc"), db.clock.now(), ev("a"))
            .await
            .unwrap();
        let at = db.clock.now();
        let now = at.unix_timestamp();
        let code = CodeRecord {
            code_hash: hash_token("code-1"),
            client_id: "svc".into(),
            grant: grant(1),
            created_at: now,
            expires_at: now + 60,
            used_at: None,
        };
        db.store
            .issue_code(&code, None, at, ev("oidc.login"))
            .await
            .unwrap();
        assert_eq!(
            db.store.code(&code.code_hash).await.unwrap().unwrap().grant,
            grant(1)
        );
        let (_, access) = new_token(TokenKind::Access, "svc", "fam", &grant(1), now, now + 600);
        let (_, refresh) = new_token(TokenKind::Refresh, "svc", "fam", &grant(1), now, now + 6000);
        let r = db
            .store
            .redeem_code(
                &code.code_hash,
                &[access.clone(), refresh.clone()],
                at,
                ev("oidc.token.issued"),
                ev("oidc.code.reused"),
            )
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Issued);
        assert!(db
            .store
            .token(&access.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        let r = db
            .store
            .redeem_code(&code.code_hash, &[], at, ev("x"), ev("oidc.code.reused"))
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Reused, "{d:?}");
        assert!(!db
            .store
            .token(&access.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        assert!(!db
            .store
            .token(&refresh.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        let r = db
            .store
            .redeem_code(&hash_token("nope"), &[], at, ev("x"), ev("y"))
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Invalid);
        let actions = audit_actions(&db).await;
        assert!(
            actions.ends_with(&[
                "oidc.login".into(),
                "oidc.token.issued".into(),
                "oidc.code.reused".into()
            ]),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn an_expired_code_is_not_redeemed() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let at = db.clock.now();
        let now = at.unix_timestamp();
        let code = CodeRecord {
            code_hash: hash_token("c"),
            client_id: "svc".into(),
            grant: grant(1),
            created_at: now - 61,
            expires_at: now - 1,
            used_at: None,
        };
        db.store
            .issue_code(&code, None, at, ev("oidc.login"))
            .await
            .unwrap();
        let r = db
            .store
            .redeem_code(&code.code_hash, &[], at, ev("x"), ev("y"))
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Invalid);
    }
}

#[tokio::test]
async fn refresh_rotation_detects_reuse_and_revokes_the_family() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let at = db.clock.now();
        let now = at.unix_timestamp();
        let (_, r1) = new_token(TokenKind::Refresh, "svc", "fam", &grant(1), now, now + 6000);
        let (_, other) = new_token(
            TokenKind::Refresh,
            "svc",
            "other",
            &grant(1),
            now,
            now + 6000,
        );
        db.store
            .issue_tokens(&[r1.clone(), other.clone()], at, ev("oidc.token.issued"))
            .await
            .unwrap();
        let (_, r2) = new_token(TokenKind::Refresh, "svc", "fam", &grant(1), now, now + 6000);
        let (_, a2) = new_token(TokenKind::Access, "svc", "fam", &grant(1), now, now + 600);
        let out = db
            .store
            .rotate_refresh(
                &r1.token_hash,
                &[r2.clone(), a2.clone()],
                at,
                ev("oidc.token.refreshed"),
                ev("r"),
            )
            .await
            .unwrap();
        assert_eq!(out, Rotated::Issued);
        assert!(db
            .store
            .token(&r2.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        // The old one again: the thief and the owner both lose the family.
        let out = db
            .store
            .rotate_refresh(&r1.token_hash, &[], at, ev("x"), ev("oidc.refresh.reused"))
            .await
            .unwrap();
        assert_eq!(out, Rotated::Reused, "{d:?}");
        assert!(!db
            .store
            .token(&r2.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        assert!(!db
            .store
            .token(&a2.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        assert!(db
            .store
            .token(&other.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        // Revocation of a refresh token revokes its family, for its client only.
        assert!(!db
            .store
            .revoke_token(&other.token_hash, "someone-else", at, ev("x"))
            .await
            .unwrap());
        assert!(db
            .store
            .revoke_token(&other.token_hash, "svc", at, ev("oidc.token.revoked"))
            .await
            .unwrap());
        assert!(!db
            .store
            .token(&other.token_hash)
            .await
            .unwrap()
            .unwrap()
            .is_active(now));
        assert_eq!(
            audit_actions(&db).await.last().unwrap(),
            "oidc.token.revoked"
        );
    }
}

#[tokio::test]
async fn claims_source_has_roles_groups_and_contact_relations() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        db.import_json(&small_roster("101001")).await;
        let teacher = db.store.account("101001t1").await.unwrap().unwrap();
        let src = db
            .store
            .claims_source(teacher.person_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(src.email.as_deref(), Some("kn@skole.dk"));
        assert_eq!(src.actors, vec!["Medarbejder".to_owned()]);
        assert_eq!(src.institutions[0].number, "101001");
        assert_eq!(src.institutions[0].roles, vec!["Lærer".to_owned()]);
        assert_eq!(src.groups.len(), 1, "{d:?}");
        let mother = db.store.account("101001m1").await.unwrap().unwrap();
        let src = db
            .store
            .claims_source(mother.person_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(src.actors, vec!["Kontaktperson".to_owned()]);
        let protected = db.store.account("101001p2").await.unwrap().unwrap();
        let src = db
            .store
            .claims_source(protected.person_id)
            .await
            .unwrap()
            .unwrap();
        assert!(src.protected);
        assert_eq!(src.alias, Some(("Anders".into(), "And".into())));
        assert!(db.store.claims_source(999_999).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn role_choices_are_remembered_per_person_and_service_with_audit() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        db.import_json(&small_roster("101001")).await;
        let at = db.clock.now();
        db.store
            .add_service(&service("svc"), at, ev("oidc.service.added"))
            .await
            .unwrap();
        let p = db
            .store
            .account("101001t1")
            .await
            .unwrap()
            .unwrap()
            .person_id;
        assert_eq!(db.store.role_choice(p, "svc").await.unwrap(), None);
        for role in ["101001/Medarbejder", "101001/Kontaktperson"] {
            db.store
                .set_role_choice(p, "svc", Some(role), at, ev("oidc.role.chosen"))
                .await
                .unwrap();
        }
        assert_eq!(
            db.store.role_choice(p, "svc").await.unwrap().as_deref(),
            Some("101001/Kontaktperson"),
            "{d:?}: the later choice replaces the earlier"
        );
        assert_eq!(
            db.store.role_choices(p).await.unwrap(),
            vec![(
                "svc".to_owned(),
                "Matematik".to_owned(),
                "101001/Kontaktperson".to_owned()
            )]
        );
        db.store
            .set_role_choice(p, "svc", None, at, ev("oidc.role.forgotten"))
            .await
            .unwrap();
        assert_eq!(db.store.role_choice(p, "svc").await.unwrap(), None);
        db.store
            .set_role_choice(
                p,
                "svc",
                Some("101001/Medarbejder"),
                at,
                ev("oidc.role.chosen"),
            )
            .await
            .unwrap();
        db.store
            .remove_service("svc", at, ev("oidc.service.removed"))
            .await
            .unwrap();
        assert!(db.store.role_choices(p).await.unwrap().is_empty());
        let actions = audit_actions(&db).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| a.starts_with("oidc.role."))
                .count(),
            4
        );
    }
}

/// Many small audited writes at once (client-credentials tokens, lone
/// audit events) go through the group commit: every caller is answered
/// only once its write is stored, every token is there, and the chain
/// holds exactly one event per write, correctly linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_issues_and_appends_are_grouped_onto_one_chain() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let at = db.clock.now();
        let now = at.unix_timestamp();
        let before = db.store.stored_head().await.unwrap().seq;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..600 {
            let store = db.store.clone();
            tasks.spawn(async move {
                if i % 3 == 0 {
                    let event =
                        NewEvent::new("test", "test.appended").details(serde_json::json!({"i": i}));
                    store.append_audit(at, vec![event]).await.unwrap();
                    None
                } else {
                    let (_, rec) = new_token(
                        TokenKind::Access,
                        "svc",
                        &format!("f{i}"),
                        &GrantData::default(),
                        now,
                        now + 600,
                    );
                    let event = NewEvent::new("service:svc", "oidc.token.issued")
                        .details(serde_json::json!({"i": i}));
                    store
                        .issue_tokens(std::slice::from_ref(&rec), at, event)
                        .await
                        .unwrap();
                    // Answered: the token is stored.
                    assert!(store.token(&rec.token_hash).await.unwrap().is_some());
                    Some(rec.token_hash)
                }
            });
        }
        let mut issued = Vec::new();
        while let Some(r) = tasks.join_next().await {
            issued.extend(r.unwrap());
        }
        assert_eq!(issued.len(), 400);
        let head = db.store.stored_head().await.unwrap();
        assert_eq!(head.seq - before, 600, "{d:?}: one event per write");
        let events = db.store.audit_page(before, 10_000).await.unwrap();
        let mut seen: Vec<i64> = events
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..600).collect::<Vec<_>>(), "{d:?}");
        assert_eq!(crate::verify(&db).await.unwrap() as i64, head.seq, "{d:?}");
    }
}
