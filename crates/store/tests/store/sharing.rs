//! Sharing on both dialects: providers, requests to one institution or a
//! municipality, approvals as versions, a raised request pending while
//! the old approval stays, revocation, blocks, history, licences, and the
//! audit event written with each change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::oidc::{hash_token, Package, Service};
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, Delivery, Filters, NewProvider, RequestSpec, RequestStatus,
    ServiceLink, SubProcessor,
};
use tilgang_core::sharing::licence::{self, Grantor};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, TestDb};

const OP: &str = "cli";

fn sub(name: &str) -> SubProcessor {
    SubProcessor {
        name: name.into(),
        cvr: "12345678".into(),
        address: "Vej 1, 8000 Aarhus".into(),
        task: "hosting".into(),
        data: "names, groups".into(),
        country: "DK".into(),
        protection: "encrypted at rest and in transit".into(),
    }
}

fn spec(package: Package, subs: &[&str], locations: &[&str]) -> RequestSpec {
    RequestSpec {
        purpose: "Pupils practise maths at their level".into(),
        package,
        delivery: Delivery::Lookup,
        filters: Filters::default(),
        sub_processors: subs.iter().map(|s| sub(s)).collect(),
        locations: locations.iter().map(|s| (*s).to_owned()).collect(),
        retention: "deleted at most 6 months after the roster stops delivering a user".into(),
        dpa_reference: "DPA-2026-17".into(),
    }
}

async fn setup(db: &TestDb) -> i64 {
    db.import_json(&small_roster("101001")).await;
    db.import_json(&small_roster("101002")).await;
    let at = db.clock.now();
    db.store
        .add_service(
            &Service {
                client_id: "matte".into(),
                name: "Matematik".into(),
                secret_hash: Some(hash_token("s")),
                jwks_uri: None,
                jwks: None,
                redirect_uris: vec!["https://rp.example/cb".into()],
                post_logout_redirect_uris: vec![],
                grants: vec!["authorization_code".into()],
                package: Package::Small,
                min_acr: "urn:tilgang:loa:1".into(),
                public: false,
                id_token_alg: "RS256".into(),
                pairwise_salt: [5; 32],
                created_at: 1,
            },
            at,
            NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
    let store = &*db.store;
    let clock = &*db.clock;
    let id = agreement::add_provider(
        store,
        clock,
        OP,
        &NewProvider {
            name: "Matteforlaget A/S".into(),
            cvr: "87654321".into(),
            address: "Forlagsvej 2".into(),
            contact: "kontakt@matte.dk".into(),
            security_contact: "security@matte.dk".into(),
        },
    )
    .await
    .unwrap();
    agreement::link_service(
        store,
        clock,
        OP,
        &ServiceLink {
            client_id: "matte".into(),
            provider_id: Some(id),
            licence_required: true,
        },
    )
    .await
    .unwrap();
    id
}

async fn actions_logged(db: &TestDb) -> Vec<String> {
    db.store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("sharing.") || a.starts_with("licence."))
        .collect()
}

#[tokio::test]
async fn a_raised_request_waits_while_the_old_approval_stays_and_revocation_ends_it() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let provider = setup(&db).await;
        let (store, clock) = (&*db.store, &*db.clock);
        assert!(
            agreement::request(
                store,
                clock,
                OP,
                "matte",
                &spec(Package::Authority, &[], &["DK"]),
                &Addressee::Institution("101001".into())
            )
            .await
            .is_err(),
            "authority package for a non-authority"
        );
        let sent = agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(Package::Small, &["Hosting A/S", "Mail ApS"], &["DK"]),
            &Addressee::Institution("101001".into()),
        )
        .await
        .unwrap();
        assert_eq!(sent.len(), 1);
        let first = sent[0].1;
        let a = agreement::agreement(store, "matte", "101001")
            .await
            .unwrap();
        assert!(a.approval.is_none() && a.pending.is_some());

        let v1 = agreement::approve(store, clock, Decider::Operator(OP), first)
            .await
            .unwrap();
        assert_eq!((v1.version, v1.spec.package), (1, Package::Small));
        assert!(
            agreement::approve(store, clock, Decider::Operator(OP), first)
                .await
                .is_err(),
            "decided once"
        );

        // Raised to medium with a third sub-processor: pending, v1 in force.
        let raised = agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(
                Package::Medium,
                &["Hosting A/S", "Mail ApS", "Analyse ApS"],
                &["DK", "IE"],
            ),
            &Addressee::Institution("101001".into()),
        )
        .await
        .unwrap()[0]
            .1;
        let a = agreement::agreement(store, "matte", "101001")
            .await
            .unwrap();
        assert_eq!(a.approval.as_ref().unwrap().version, 1);
        let pending = a.pending.unwrap();
        assert_eq!(pending.id, raised);
        let changes = agreement::changes(Some(&a.approval.unwrap().spec), &pending.spec);
        assert!(changes.iter().any(
            |c| matches!(c, agreement::Change::SubProcessorAdded { name } if name == "Analyse ApS")
        ));

        let v2 = agreement::approve(store, clock, Decider::Operator(OP), raised)
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        let versions = store.approvals("matte", "101001").await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].end_reason.as_deref(), Some("superseded"));
        assert!(versions[1].ended_at.is_none());

        assert!(agreement::revoke(
            store,
            clock,
            Decider::Operator(OP),
            "matte",
            "101001",
            "no DPA"
        )
        .await
        .unwrap());
        assert!(agreement::agreement(store, "matte", "101001")
            .await
            .unwrap()
            .approval
            .is_none());
        assert!(!agreement::revoke(
            store,
            clock,
            Decider::Operator(OP),
            "matte",
            "101001",
            "again"
        )
        .await
        .unwrap());

        // Marked as an authority by an operator, the provider may ask for it.
        assert!(agreement::mark_authority(store, clock, OP, provider, true)
            .await
            .unwrap());
        let r = agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(Package::Authority, &[], &["DK"]),
            &Addressee::Institution("101001".into()),
        )
        .await
        .unwrap()[0]
            .1;
        agreement::reject(store, clock, Decider::Operator(OP), r, "not needed")
            .await
            .unwrap();
        assert_eq!(
            store.request(r).await.unwrap().unwrap().status,
            RequestStatus::Rejected
        );

        let history: Vec<String> = store
            .history("matte", "101001")
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.action)
            .collect();
        assert_eq!(
            history,
            [
                actions::SHARING_REQUESTED,
                actions::SHARING_APPROVED,
                actions::SHARING_REQUESTED,
                actions::SHARING_APPROVED,
                actions::SHARING_REVOKED,
                actions::SHARING_REQUESTED,
                actions::SHARING_REJECTED
            ],
            "{d:?}"
        );
        let logged = actions_logged(&db).await;
        assert!(logged.contains(&actions::SHARING_PROVIDER_ADDED.to_owned()));
        assert!(logged.contains(&actions::SHARING_PROVIDER_AUTHORITY.to_owned()));
        assert_eq!(
            logged
                .iter()
                .filter(|a| *a == actions::SHARING_APPROVED)
                .count(),
            2
        );
    }
}

#[tokio::test]
async fn municipality_requests_reach_every_institution_and_minimal_is_only_listed() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db).await;
        let (store, clock) = (&*db.store, &*db.clock);
        let sent = agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(Package::Minimal, &[], &[]),
            &Addressee::Municipality("101".into()),
        )
        .await
        .unwrap();
        assert_eq!(sent.len(), 2, "{d:?}");
        let r = store.request(sent[0].1).await.unwrap().unwrap();
        assert_eq!(r.status, RequestStatus::Listed);
        assert!(actions_logged(&db)
            .await
            .contains(&actions::SHARING_LISTED.to_owned()));
        assert!(
            agreement::approve(store, clock, Decider::Operator(OP), r.id)
                .await
                .is_err(),
            "nothing to approve"
        );
        assert!(agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(Package::Small, &[], &["DK"]),
            &Addressee::List(vec!["101001".into(), "999999".into()]),
        )
        .await
        .is_err());
        agreement::request(
            store,
            clock,
            OP,
            "matte",
            &spec(Package::Small, &[], &["DK"]),
            &Addressee::Municipality("101".into()),
        )
        .await
        .unwrap();
        let made = agreement::approve_for_municipality(
            store,
            clock,
            Decider::Operator(OP),
            "101",
            "matte",
            None,
        )
        .await
        .unwrap();
        assert_eq!(made.len(), 2);
        assert_eq!(
            store
                .requests(Some("matte"), Some("101002"))
                .await
                .unwrap()
                .iter()
                .map(|r| r.status)
                .collect::<Vec<_>>(),
            [RequestStatus::Approved, RequestStatus::Superseded]
        );
    }
}

#[tokio::test]
async fn blocks_and_licences_are_stored_with_their_events() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db).await;
        let (store, clock) = (&*db.store, &*db.clock);
        let block = |reason: Option<&'static str>| {
            agreement::set_block(
                store,
                clock,
                Decider::Operator(OP),
                "matte",
                "101001",
                reason,
            )
        };
        assert!(block(Some("sells data")).await.unwrap());
        assert!(!block(Some("again")).await.unwrap());
        assert!(agreement::agreement(store, "matte", "101001")
            .await
            .unwrap()
            .block
            .is_some());
        assert_eq!(store.blocks(Some("101001")).await.unwrap().len(), 1);
        assert!(block(None).await.unwrap());
        assert!(store.block("matte", "101001").await.unwrap().is_none());

        let csv = "service,institution,scope,target,from,to\n\
                   matte,101001,institution,,2026-01-01,\n\
                   matte,101002,person,101002p1,2026-01-01,2026-12-31\n";
        let rows = licence::parse_csv(csv.as_bytes(), OP).unwrap();
        let ids = licence::grant(store, clock, OP, &Grantor::Institution, rows)
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        let rows = licence::parse_csv(csv.as_bytes(), OP).unwrap();
        assert_eq!(
            licence::grant(
                store,
                clock,
                OP,
                &Grantor::Provider {
                    consent: " ".into()
                },
                rows
            )
            .await
            .unwrap_err()
            .code(),
            "LICENCE_CONSENT_REQUIRED"
        );
        let all = store.licences(Some("matte"), None).await.unwrap();
        assert_eq!(all.len(), 2, "{d:?}");
        assert_eq!(all[1].new.valid_to.unwrap().to_string(), "2026-12-31");
        assert!(licence::withdraw(store, clock, OP, ids[0]).await.unwrap());
        assert!(!licence::withdraw(store, clock, OP, ids[0]).await.unwrap());
        let one = store.licences(None, Some("101001")).await.unwrap();
        assert!(one[0].withdrawn_at.is_some());
        let logged = actions_logged(&db).await;
        for a in [
            actions::SHARING_BLOCKED,
            actions::SHARING_UNBLOCKED,
            actions::LICENCE_GRANTED,
            actions::LICENCE_WITHDRAWN,
            actions::SHARING_SERVICE_LINKED,
        ] {
            assert!(logged.contains(&a.to_owned()), "{a} in {logged:?}");
        }
        assert!(
            store
                .service_link("matte")
                .await
                .unwrap()
                .unwrap()
                .licence_required
        );
    }
}
