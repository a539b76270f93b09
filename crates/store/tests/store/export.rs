//! The export (issue 6) on both dialects: the keyset read path, the JSON
//! body per package and filter, protected persons, ended memberships,
//! refusals, the audit event per page (and nothing sent when it fails),
//! the producer never ahead of its consumer, and a OneRoster zip that
//! tilgang's own import reads back as the same roster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::Read;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::oidc::{hash_token, Package, Service};
use tilgang_core::roster::import::native;
use tilgang_core::roster::synth::{self, Scale, SynthOptions};
use tilgang_core::roster::Actor;
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, Delivery, Filters, NewProvider, NewRequest, RequestSpec,
    RequestStatus, ServiceLink,
};
use tilgang_core::sharing::export::{self, Format};
use tilgang_core::{Clock, Error};
use tilgang_testkit::{dialects, small_roster, TestDb};

const OP: &str = "cli";
const SCHOOL: &str = "101001";

fn spec(package: Package, delivery: Delivery, filters: Filters) -> RequestSpec {
    RequestSpec {
        purpose: "Class lists for the learning platform".into(),
        package,
        delivery,
        filters,
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "deleted 6 months after the roster stops delivering a user".into(),
        dpa_reference: "DPA-2026-42".into(),
    }
}

/// A service `laer` with its provider (an authority when asked).
async fn service(db: &TestDb, authority: bool) {
    let at = db.clock.now();
    db.store
        .add_service(
            &Service {
                client_id: "laer".into(),
                name: "Læringsplatform".into(),
                secret_hash: Some(hash_token("s")),
                jwks_uri: None,
                jwks: None,
                redirect_uris: vec!["https://rp.example/cb".into()],
                post_logout_redirect_uris: vec![],
                grants: vec!["client_credentials".into()],
                package: Package::Small,
                min_acr: "urn:tilgang:loa:1".into(),
                public: false,
                id_token_alg: "RS256".into(),
                pairwise_salt: [7; 32],
                created_at: 1,
            },
            at,
            NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
    let (store, clock) = (&*db.store, &*db.clock);
    let id = agreement::add_provider(
        store,
        clock,
        OP,
        &NewProvider {
            name: "Læring A/S".into(),
            cvr: "11223344".into(),
            address: "Vej 3".into(),
            contact: "k@laer.dk".into(),
            security_contact: "s@laer.dk".into(),
        },
    )
    .await
    .unwrap();
    if authority {
        agreement::mark_authority(store, clock, OP, id, true)
            .await
            .unwrap();
    }
    agreement::link_service(
        store,
        clock,
        OP,
        &ServiceLink {
            client_id: "laer".into(),
            provider_id: Some(id),
            licence_required: false,
        },
    )
    .await
    .unwrap();
}

async fn approve(db: &TestDb, package: Package, delivery: Delivery, filters: Filters) {
    let (store, clock) = (&*db.store, &*db.clock);
    let s = spec(package, delivery, filters);
    let id = if package == Package::Minimal {
        // The minimal package is listed, never pending; an approval of it
        // for export is stored directly.
        store
            .add_requests(
                &[NewRequest {
                    client_id: "laer".into(),
                    institution: SCHOOL.into(),
                    spec: s,
                    status: RequestStatus::Pending,
                    created_by: OP.into(),
                }],
                clock.now(),
                vec![NewEvent::new(OP, actions::SHARING_REQUESTED)],
            )
            .await
            .unwrap()[0]
    } else {
        agreement::request(
            store,
            clock,
            OP,
            "laer",
            &s,
            &Addressee::Institution(SCHOOL.into()),
        )
        .await
        .unwrap()[0]
            .1
    };
    agreement::approve(store, clock, Decider::Operator(OP), id)
        .await
        .unwrap();
}

async fn setup(db: &TestDb, package: Package, filters: Filters) {
    db.import_json(&small_roster(SCHOOL)).await;
    service(db, package == Package::Authority).await;
    approve(db, package, Delivery::Export, filters).await;
}

async fn open(db: &TestDb, format: Format) -> Result<export::Export, Error> {
    export::open(
        db.store.clone(),
        db.clock.clone(),
        db.keys.clone(),
        "laer",
        SCHOOL,
        format,
    )
    .await
}

async fn json(db: &TestDb, page: usize) -> Value {
    let mut e = open(db, Format::Json).await.unwrap().with_page_size(page);
    let mut body = Vec::new();
    export::write_all(&mut e, &mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn person<'a>(doc: &'a Value, user_id: &str) -> Option<&'a Value> {
    doc["persons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == user_id)
}

async fn export_events(db: &TestDb) -> Vec<tilgang_core::audit::Event> {
    db.store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == actions::SHARING_EXPORTED)
        .collect()
}

fn subjects_of(e: &tilgang_core::audit::Event) -> Vec<i64> {
    serde_json::from_str(&e.subjects).unwrap()
}

#[tokio::test]
async fn export_page_walks_an_institution_by_keyset_with_roles_memberships_and_contacts() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        db.import_json(&small_roster(SCHOOL)).await;
        db.import_json(&small_roster("101002")).await;
        let inst = db.store.export_institution(SCHOOL).await.unwrap().unwrap();
        assert_eq!(inst.school_year.as_deref(), Some("2026/2027"));
        assert!(inst.import_digest.is_some() && inst.updated_at > 0, "{d:?}");
        assert!(db
            .store
            .export_institution("999999")
            .await
            .unwrap()
            .is_none());
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = db.store.export_page(inst.id, after, 3).await.unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= 3);
            after = last.id;
            seen.extend(page);
        }
        let users: Vec<&str> = seen.iter().map(|p| p.person.user_id.as_str()).collect();
        assert_eq!(
            users,
            ["101001p1", "101001p2", "101001t1", "101001m1"],
            "{d:?}"
        );
        assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
        let p1 = &seen[0];
        assert_eq!(p1.roles.len(), 1);
        assert_eq!(p1.roles[0].grade_level.as_deref(), Some("1"));
        let mut groups: Vec<&str> = p1.memberships.iter().map(|m| m.group.as_str()).collect();
        groups.sort();
        assert_eq!(groups, ["1", "1A"]);
        assert!(p1.cpr_enc.is_some());
        assert_eq!(p1.contacts.len(), 1);
        // The mother is at the institution through her child alone.
        let m1 = &seen[3];
        assert!(m1.roles.is_empty() && m1.memberships.is_empty());
        assert_eq!(m1.contacts[0].pupil, "101001p1");
        let groups = db.store.export_groups(inst.id).await.unwrap();
        assert_eq!(groups.len(), 2);
    }
}

#[tokio::test]
async fn small_package_json_has_a_header_and_aliases_for_protected_persons_and_is_audited_per_page()
{
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Small, Filters::default()).await;
        let doc = json(&db, 2).await;
        let h = &doc["header"];
        assert_eq!(h["package"], "small", "{d:?}");
        assert_eq!(h["service"], "laer");
        assert_eq!(h["institution"]["number"], SCHOOL);
        assert_eq!(h["import"]["school_year"], "2026/2027");
        assert_eq!(h["approval_version"], 1);
        assert!(h["import"]["digest"].as_str().unwrap().len() == 16);
        assert!(h["made_at"].as_str().unwrap().starts_with("20"));
        assert_eq!(doc["persons"].as_array().unwrap().len(), 4);
        let p1 = person(&doc, "101001p1").unwrap();
        assert_eq!(p1["given_name"], "Alma");
        assert_eq!(p1["roles"][0]["role"], "Elev");
        assert_eq!(p1["roles"][0]["grade_level"], "1");
        assert!(p1.get("cpr").is_none() && p1.get("birth_date").is_none());
        // Protected: the alias, never the real name.
        let p2 = person(&doc, "101001p2").unwrap();
        assert_eq!(
            (&p2["given_name"], &p2["family_name"]),
            (&Value::from("Anders"), &Value::from("And"))
        );
        assert!(!doc.to_string().contains("Hansen"));
        let m1 = person(&doc, "101001m1").unwrap();
        assert!(m1.get("phones").is_none() && m1.get("address").is_none());
        assert_eq!(m1["actor_groups"][0], "Kontaktperson");
        assert_eq!(doc["groups"].as_array().unwrap().len(), 2);
        assert_eq!(doc["groups"][0]["name"], "1. årgang");
        // Pages of two: two events, naming the service and every person sent.
        let events = export_events(&db).await;
        assert_eq!(events.len(), 2, "{d:?}");
        let mut subjects: Vec<i64> = events.iter().flat_map(subjects_of).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), 4);
        assert_eq!(events[0].actor, "service:laer");
        assert_eq!(events[0].institution.as_deref(), Some(SCHOOL));
        let details: Value = serde_json::from_str(&events[0].details).unwrap();
        assert_eq!(details["package"], "small");
        assert_eq!(details["service"], "laer");
    }
}

#[tokio::test]
async fn large_package_withholds_protected_data_and_the_authority_package_carries_it_with_the_flag()
{
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Large, Filters::default()).await;
        let doc = json(&db, 1000).await;
        let p1 = person(&doc, "101001p1").unwrap();
        assert_eq!(p1["cpr"], "3002201234", "{d:?}");
        assert_eq!(p1["birth_date"], "2020-02-03");
        assert_eq!(p1["protected"], false);
        assert_eq!(p1["contacts"][0]["relation"], "Mor");
        let m1 = person(&doc, "101001m1").unwrap();
        assert_eq!(m1["phones"][0]["number"], "+4512345678");
        assert_eq!(m1["address"]["city"], "Aarhus C");
        let p2 = person(&doc, "101001p2").unwrap();
        assert_eq!(p2["given_name"], "Anders");
        assert_eq!(p2["protected"], true);

        let db = TestDb::new(&d).await;
        setup(&db, Package::Authority, Filters::default()).await;
        let doc = json(&db, 1000).await;
        assert_eq!(doc["header"]["package"], "authority");
        let p2 = person(&doc, "101001p2").unwrap();
        assert_eq!(
            (&p2["given_name"], &p2["family_name"]),
            (&Value::from("Bo"), &Value::from("Hansen"))
        );
        assert_eq!(p2["protected"], true);
    }
}

#[tokio::test]
async fn minimal_package_gives_pairwise_ids_groups_and_roles_only() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Minimal, Filters::default()).await;
        let doc = json(&db, 1000).await;
        let persons = doc["persons"].as_array().unwrap();
        assert_eq!(persons.len(), 4, "{d:?}");
        let text = doc["persons"].to_string();
        for leak in [
            "101001p1",
            "Alma",
            "Anders",
            "Jensen",
            "3002201234",
            "kn@skole.dk",
        ] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let ids: Vec<&str> = persons.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert!(ids.iter().all(|i| i.len() == 43), "{ids:?}");
        let pupil = persons
            .iter()
            .find(|p| p["roles"][0]["role"] == "Elev")
            .unwrap();
        assert!(pupil["roles"][0].get("grade_level").is_none());
        assert_eq!(pupil["groups"].as_array().unwrap().len(), 2);
        assert_eq!(pupil["actor_groups"][0], "Elev");
        // Group ids only: their names are the small package's.
        assert!(doc["groups"][0].get("name").is_none());
        // Pairwise: the same person, another id for another service's salt.
        let again = json(&db, 1000).await;
        assert_eq!(again["persons"][0]["id"], persons[0]["id"]);
    }
}

#[tokio::test]
async fn filters_export_only_the_approved_actor_types_and_grade_levels() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let pupils_of_1 = Filters {
            actors: vec![Actor::Pupil],
            grade_levels: vec!["1".into()],
        };
        setup(&db, Package::Small, pupils_of_1).await;
        let doc = json(&db, 1000).await;
        let users: Vec<&str> = doc["persons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["101001p1", "101001p2"], "{d:?}");
        assert_eq!(doc["header"]["filters"]["actors"][0], "Elev");
        let subjects: usize = export_events(&db)
            .await
            .iter()
            .map(|e| subjects_of(e).len())
            .sum();
        assert_eq!(subjects, 2, "filtered persons are neither sent nor logged");

        let db = TestDb::new(&d).await;
        let grade_2 = Filters {
            actors: vec![Actor::Pupil],
            grade_levels: vec!["2".into()],
        };
        setup(&db, Package::Small, grade_2).await;
        let doc = json(&db, 1000).await;
        assert!(doc["persons"].as_array().unwrap().is_empty());
        assert!(export_events(&db).await.is_empty());
    }
}

#[tokio::test]
async fn ended_memberships_and_roles_are_left_out() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Small, Filters::default()).await;
        let mut doc = small_roster(SCHOOL);
        // p1 leaves group "1"; the teacher leaves the school.
        doc["groups"][1]["members"] = serde_json::json!(["101001p2"]);
        let persons = doc["persons"].as_array_mut().unwrap();
        persons.retain(|p| p["user_id"] != "101001t1");
        doc["groups"][0]["members"] = serde_json::json!(["101001p1", "101001p2"]);
        db.import_json(&doc).await;
        let out = json(&db, 1000).await;
        let p1 = person(&out, "101001p1").unwrap();
        assert_eq!(p1["groups"], serde_json::json!(["1A"]), "{d:?}");
        assert!(person(&out, "101001t1").is_none());
        assert_eq!(
            person(&out, "101001p2").unwrap()["groups"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn refusals_are_all_not_found() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        db.import_json(&small_roster(SCHOOL)).await;
        service(&db, false).await;
        let refused = |r: Result<export::Export, Error>| match r {
            Err(Error::NotFound(m)) => assert_eq!(m, format!("institution {SCHOOL}")),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("exported"),
        };
        // Nothing approved.
        refused(open(&db, Format::Json).await);
        // Approved for lookup at login only.
        approve(&db, Package::Small, Delivery::Lookup, Filters::default()).await;
        refused(open(&db, Format::Json).await);
        approve(&db, Package::Small, Delivery::Both, Filters::default()).await;
        assert!(open(&db, Format::Json).await.is_ok());
        // Blocked.
        let (store, clock) = (&*db.store, &*db.clock);
        agreement::set_block(
            store,
            clock,
            Decider::Operator(OP),
            "laer",
            SCHOOL,
            Some("misuse"),
        )
        .await
        .unwrap();
        refused(open(&db, Format::OneRoster).await);
        agreement::set_block(store, clock, Decider::Operator(OP), "laer", SCHOOL, None)
            .await
            .unwrap();
        assert!(open(&db, Format::Json).await.is_ok());
        // Revoked.
        agreement::revoke(
            store,
            clock,
            Decider::Operator(OP),
            "laer",
            SCHOOL,
            "contract ended",
        )
        .await
        .unwrap();
        refused(open(&db, Format::Json).await);
        // Unknown institution and unknown service look the same.
        let other = export::open(
            db.store.clone(),
            db.clock.clone(),
            db.keys.clone(),
            "laer",
            "999999",
            Format::Json,
        )
        .await;
        assert!(matches!(other, Err(Error::NotFound(m)) if m == "institution 999999"));
        let ghost = export::open(
            db.store.clone(),
            db.clock.clone(),
            db.keys.clone(),
            "ghost",
            SCHOOL,
            Format::Json,
        )
        .await;
        refused(ghost);
        assert!(export_events(&db).await.is_empty());
    }
}

#[tokio::test]
async fn the_producer_is_never_more_than_one_page_ahead_of_a_slow_consumer() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Small, Filters::default()).await;
        let mut e = open(&db, Format::Json).await.unwrap().with_page_size(1);
        // A streaming body: a channel of one chunk between producer and
        // consumer, as a response body has.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        let producer = tokio::spawn(async move {
            while let Some(chunk) = e.next_chunk().await.unwrap() {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut received = 0usize;
        while let Some(_chunk) = rx.recv().await {
            received += 1;
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            let pages = export_events(&db).await.len();
            // The header chunk has no page; one chunk waits in the channel
            // and the producer holds at most one more.
            assert!(
                pages <= received + 1,
                "{pages} pages audited, {received} chunks read ({d:?})"
            );
        }
        producer.await.unwrap();
        assert_eq!(export_events(&db).await.len(), 4);
    }
}

#[tokio::test]
async fn a_failing_audit_write_stops_the_export_before_the_page_is_sent() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        setup(&db, Package::Small, Filters::default()).await;
        let mut e = open(&db, Format::Json).await.unwrap().with_page_size(2);
        let head = e.next_chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&head).contains("\"header\""));
        let first = e.next_chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("101001p1"));
        // The audit log refuses writes from here on.
        db.raw("ALTER TABLE audit_events RENAME TO audit_events_away")
            .await;
        let r = e.next_chunk().await;
        assert!(r.is_err(), "{d:?}");
        // Nothing more comes after the failure.
        assert!(e.next_chunk().await.unwrap().is_none());
        db.raw("ALTER TABLE audit_events_away RENAME TO audit_events")
            .await;
        assert_eq!(export_events(&db).await.len(), 1);
    }
}

#[tokio::test]
async fn a_oneroster_export_imported_back_gives_the_same_roster() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let mut roster = synth::institution(&SynthOptions::for_scale(Scale::School, 7), 0);
        roster.institution.number = SCHOOL.into();
        db.import_json(&serde_json::to_value(native::to_raw(&roster)).unwrap())
            .await;
        service(&db, false).await;
        approve(&db, Package::Large, Delivery::Export, Filters::default()).await;
        let mut e = open(&db, Format::OneRoster)
            .await
            .unwrap()
            .with_page_size(500);
        let mut zip = Vec::new();
        let progress = export::write_all(&mut e, &mut zip).await.unwrap();
        assert!(progress.persons > 100, "{progress:?}");
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).unwrap();
        let mut manifest = String::new();
        a.by_name("manifest.csv")
            .unwrap()
            .read_to_string(&mut manifest)
            .unwrap();
        assert!(manifest.contains("oneroster.version,1.2"), "{manifest}");

        let back = TestDb::new(&d).await;
        let path = back.dir().join("export.zip");
        std::fs::write(&path, &zip).unwrap();
        let report = tilgang_core::roster::import::run::run(
            &*back.store,
            &back.keys,
            &*back.clock,
            &tilgang_core::roster::import::Source::open(&path).unwrap(),
            &tilgang_core::roster::import::run::Options {
                format: None,
                institution: None,
                delta: false,
                dry_run: false,
                actor: "test".into(),
            },
            &tilgang_core::roster::import::run::NoProgress,
        )
        .await;
        assert!(report.is_ok(), "{report:?}");
        let (orig, orig_stored) = db.store.institution_roster(SCHOOL).await.unwrap().unwrap();
        let (copy, copy_stored) = back
            .store
            .institution_roster(SCHOOL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(copy.institution.name, orig.institution.name);
        assert_eq!(
            copy.institution.municipality_code,
            orig.institution.municipality_code
        );
        assert_eq!(copy.school_year, orig.school_year);
        compare(&orig, &copy, &orig_stored, &copy_stored, &db, &back);
    }
}

/// The fields the large package carries and OneRoster can hold: names
/// (aliases for protected persons), CPR, e-mail, birth date, gender, local
/// id, home and mobile phones, roles (as the mapping folds them), grade
/// levels, main groups, groups, memberships and contact relations.
fn compare(
    a: &tilgang_core::roster::InstitutionRoster,
    b: &tilgang_core::roster::InstitutionRoster,
    sa: &[tilgang_core::store::StoredPerson],
    sb: &[tilgang_core::store::StoredPerson],
    da: &TestDb,
    db_: &TestDb,
) {
    use tilgang_core::roster::{PhoneKind, RoleKind};
    assert_eq!(a.persons.len(), b.persons.len());
    for (((p, q), s), t) in a.persons.iter().zip(&b.persons).zip(sa).zip(sb) {
        assert_eq!(p.user_id, q.user_id);
        let names = if p.protected {
            (
                p.alias_given_name.clone().unwrap_or_default(),
                p.alias_family_name.clone().unwrap_or_default(),
            )
        } else {
            (p.given_name.clone(), p.family_name.clone())
        };
        assert_eq!(
            (q.given_name.clone(), q.family_name.clone()),
            names,
            "{}",
            p.user_id
        );
        assert_eq!(q.email, p.email);
        assert_eq!(q.birth_date, p.birth_date);
        assert_eq!(q.gender, p.gender);
        assert_eq!(q.local_person_id, p.local_person_id);
        let cpr = |st: &tilgang_core::store::StoredPerson, k: &tilgang_core::crypto::DataKeys| {
            st.cpr_enc
                .as_deref()
                .map(|c| k.decrypt_cpr(c).unwrap().expose().to_owned())
        };
        assert_eq!(cpr(t, &db_.keys), cpr(s, &da.keys));
        let phones = |x: &tilgang_core::roster::Person| {
            let mut v: Vec<(PhoneKind, String)> = if x.protected {
                vec![]
            } else {
                x.phones
                    .iter()
                    .filter(|ph| ph.kind != PhoneKind::Work)
                    .map(|ph| (ph.kind, ph.number.clone()))
                    .collect()
            };
            v.sort();
            v.dedup_by(|x, y| x.0 == y.0);
            v
        };
        assert_eq!(phones(q), phones(p), "{}", p.user_id);
    }
    let fold = |r: RoleKind| match r {
        RoleKind::Child | RoleKind::Student => RoleKind::Pupil,
        RoleKind::Management => RoleKind::Leader,
        RoleKind::Trainee => RoleKind::External,
        r => r,
    };
    let roles = |r: &tilgang_core::roster::InstitutionRoster| {
        let mut v: Vec<_> = r
            .roles
            .iter()
            .map(|x| {
                (
                    x.user_id.clone(),
                    fold(x.role),
                    x.grade_level.clone(),
                    x.main_group.clone(),
                )
            })
            .collect();
        v.sort();
        v.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
        v
    };
    assert_eq!(roles(b), roles(a));
    let groups = |r: &tilgang_core::roster::InstitutionRoster| {
        r.groups
            .iter()
            .map(|g| (g.id.clone(), g.name.clone(), g.level.clone(), g.from, g.to))
            .collect::<Vec<_>>()
    };
    assert_eq!(groups(b), groups(a));
    assert_eq!(b.memberships, a.memberships);
    // OneRoster gives a contact person one role for all their pupils, so
    // custody comes back per person: exact where all their relations agree.
    let pairs = |r: &tilgang_core::roster::InstitutionRoster| {
        let mut v: Vec<_> = r
            .contacts
            .iter()
            .map(|c| (c.pupil.clone(), c.contact.clone()))
            .collect();
        v.sort();
        v
    };
    assert!(pairs(b) == pairs(a), "contact relations differ");
    let mut custody = std::collections::HashMap::<&str, Vec<bool>>::new();
    for c in &a.contacts {
        custody
            .entry(c.contact.as_str())
            .or_default()
            .push(c.custody);
    }
    for c in &b.contacts {
        let all = &custody[c.contact.as_str()];
        if all.iter().all(|x| *x == all[0]) {
            assert_eq!(c.custody, all[0], "{} of {}", c.contact, c.pupil);
        } else {
            assert!(c.custody, "the strongest of mixed relations is kept");
        }
    }
}
