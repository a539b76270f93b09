//! PostgreSQL-specific tests: rollback on drop, concurrent migration, and
//! the national-scale store benchmark (ignored by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::sqlite::SqliteStore;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tilgang_core::audit::Verifier;
use tilgang_core::crypto::DataKeys;
use tilgang_core::roster::apply::{apply, prepare, Context, Prepared, Summary};
use tilgang_core::roster::import::{Location, Mode, Parsed};
use tilgang_core::roster::synth::{self, SynthOptions};
use time::macros::datetime;

struct TestDb {
    admin: tokio_postgres::Config,
    name: String,
    store: PgStore,
}

async fn admin_client(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config
        .connect(NoTls)
        .await
        .expect("connect to TILGANG_TEST_POSTGRES_URL");
    tokio::spawn(conn);
    client
}

/// A fresh, empty database, or None when no server is configured.
async fn test_db() -> Option<TestDb> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Ok(url) = std::env::var("TILGANG_TEST_POSTGRES_URL") else {
        eprintln!("TILGANG_TEST_POSTGRES_URL is not set: skipped");
        return None;
    };
    let admin: tokio_postgres::Config = url.parse().expect("TILGANG_TEST_POSTGRES_URL");
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let name = format!(
        "tilgang_t_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        random as u32
    );
    admin_client(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut config = admin.clone();
    config.dbname(&name);
    let store = PgStore::from_config(config, &name).await.unwrap();
    Some(TestDb { admin, name, store })
}

impl TestDb {
    async fn another_store(&self) -> PgStore {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        PgStore::from_config(config, &self.name).await.unwrap()
    }

    async fn drop_db(self) {
        self.store.pool.close();
        admin_client(&self.admin)
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

fn keys() -> DataKeys {
    DataKeys::from_master(&[7; 32])
}

fn ctx(day: u8, mode: Mode, dry_run: bool) -> Context {
    Context {
        actor: "system:import".into(),
        now: datetime!(2026-09-01 08:00 UTC) + time::Duration::days(i64::from(day)),
        mode,
        dry_run,
    }
}

/// One institution in a transaction of its own; a dry run rolls back.
async fn import_institution(store: &dyn RosterStore, p: &Prepared, c: &Context) -> Result<Summary> {
    let mut tx = store.begin_import().await?;
    let summary = apply(&mut *tx, p, c).await?;
    if !c.dry_run {
        tx.commit().await?;
    }
    Ok(summary)
}

async fn import(store: &dyn RosterStore, roster: &InstitutionRoster, c: &Context) -> Summary {
    let parsed = Parsed {
        location: Location::file("test.json"),
        roster: roster.clone(),
    };
    import_institution(store, &prepare(parsed, &keys(), None), c)
        .await
        .unwrap()
}

/// A stored person's id, decrypted CPR number and inactive date.
type PersonState = (i64, Option<String>, Option<Date>);

/// Everything a store says about its contents, CPR numbers decrypted.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Counts,
    institutions: Vec<InstitutionInfo>,
    rosters: Vec<Option<(InstitutionRoster, Vec<PersonState>)>>,
    head: Head,
    events: Vec<Event>,
}

async fn snapshot<S: Store + ?Sized>(s: &S, numbers: &[&str]) -> Snapshot {
    let keys = keys();
    let mut rosters = Vec::new();
    for n in numbers {
        rosters.push(s.institution_roster(n).await.unwrap().map(|(r, stored)| {
            let stored = stored
                .into_iter()
                .map(|p| {
                    let cpr = p
                        .cpr_enc
                        .map(|b| keys.decrypt_cpr(&b).unwrap().expose().to_owned());
                    (p.id, cpr, p.inactive_since)
                })
                .collect();
            (r, stored)
        }));
    }
    let head = s.stored_head().await.unwrap();
    let events = s.audit_page(0, 100_000).await.unwrap();
    let mut v = Verifier::new(Head::default());
    for e in &events {
        v.push(e).unwrap();
    }
    v.finish(head).unwrap();
    Snapshot {
        counts: s.counts().await.unwrap(),
        institutions: s.institutions().await.unwrap(),
        rosters,
        head,
        events,
    }
}

/// A changed copy of an institution: some roles, memberships and
/// contacts gone, one pupil gone entirely, a renamed person and group,
/// a changed contact relation, a new group.
fn changed(r: &InstitutionRoster) -> InstitutionRoster {
    let mut r = r.clone();
    let gone = r
        .roles
        .iter()
        .find(|x| x.role == RoleKind::Pupil)
        .map(|x| x.user_id.clone())
        .unwrap();
    r.persons.retain(|p| p.user_id != gone);
    r.roles.retain(|x| x.user_id != gone);
    r.memberships.retain(|m| m.user_id != gone);
    r.contacts.retain(|c| c.pupil != gone && c.contact != gone);
    r.roles.truncate(r.roles.len() - 3);
    r.memberships.retain(|m| !m.group.ends_with('1'));
    r.contacts.pop();
    if let Some(c) = r.contacts.first_mut() {
        c.custody = !c.custody;
        c.access_level = Some(3);
    }
    if let Some(p) = r.persons.iter_mut().find(|p| p.user_id != gone) {
        p.family_name.push_str("-Hansen");
        p.email = None;
    }
    if let Some(x) = r.roles.iter_mut().find(|x| x.role == RoleKind::Teacher) {
        x.initials = Some("ZZ".into());
    }
    if let Some(g) = r.groups.first_mut() {
        g.name.push_str(" (ny)");
    }
    r.groups.push(Group {
        id: "extra-1".into(),
        name: "Ekstra".into(),
        kind: GroupKind::Team,
        level: None,
        line: None,
        from: None,
        to: None,
    });
    r
}

/// A delta that ends a few roles, a membership and a contact relation.
fn delta(r: &InstitutionRoster) -> InstitutionRoster {
    let mut d = r.clone();
    d.roles.clear();
    d.groups.clear();
    d.memberships.clear();
    d.contacts.clear();
    d.ended.roles = r
        .roles
        .iter()
        .take(4)
        .map(|x| (x.user_id.clone(), x.role))
        .collect();
    d.ended.memberships = r.memberships.iter().take(2).cloned().collect();
    d.ended.contacts = r
        .contacts
        .iter()
        .take(2)
        .map(|c| (c.pupil.clone(), c.contact.clone()))
        .collect();
    d.ended.groups = r
        .groups
        .iter()
        .skip(1)
        .take(1)
        .map(|g| g.id.clone())
        .collect();
    d
}

#[tokio::test]
async fn imports_match_sqlite() {
    let Some(db) = test_db().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(dir.path().join("t.db").to_str().unwrap()).unwrap();
    lite.migrate().await.unwrap();
    let pg = &db.store;
    assert_eq!(
        pg.migrate().await.unwrap().applied,
        POSTGRES_MIGRATIONS
            .iter()
            .map(|m| m.name.to_owned())
            .collect::<Vec<_>>()
    );

    let opts = SynthOptions {
        institutions: 2,
        seed: 42,
    };
    let a = synth::institution(&opts, 0);
    let b = synth::institution(&opts, 1);
    let numbers = [
        a.institution.number.as_str(),
        b.institution.number.as_str(),
        "nope",
    ];
    let a2 = changed(&a);
    let steps: Vec<(&InstitutionRoster, Context)> = vec![
        (&a, ctx(0, Mode::Full, false)),
        (&b, ctx(0, Mode::Full, false)),
        (&a, ctx(1, Mode::Full, false)),
        (&a2, ctx(2, Mode::Full, false)),
        (&a, ctx(3, Mode::Full, false)),
        (&a2, ctx(4, Mode::Full, false)),
    ];
    let b_delta = delta(&b);
    let steps = steps.into_iter().chain([
        (&b_delta, ctx(5, Mode::Delta, false)),
        (&b, ctx(6, Mode::Full, false)),
    ]);
    for (i, (roster, c)) in steps.enumerate() {
        let want = import(&lite, roster, &c).await;
        let got = import(pg, roster, &c).await;
        assert_eq!(got, want, "summary of step {i}");
        if i > 0 {
            assert!(i == 2 || got.changed(), "step {i} changes something");
        }
        assert_eq!(
            snapshot(pg, &numbers).await,
            snapshot(&lite, &numbers).await,
            "after step {i}"
        );
    }
    let before = snapshot(pg, &numbers).await;
    assert!(
        before.counts.persons > 100 && before.counts.audit_events > 10,
        "{:?}",
        before.counts
    );

    // A dry run reports the same and leaves nothing behind.
    let dry = ctx(7, Mode::Full, true);
    assert_eq!(import(pg, &a, &dry).await, import(&lite, &a, &dry).await);
    assert_eq!(snapshot(pg, &numbers).await, before);
    db.drop_db().await;
}

#[tokio::test]
async fn dropping_an_import_rolls_back() {
    let Some(db) = test_db().await else { return };
    let pg = &db.store;
    pg.migrate().await.unwrap();
    let roster = synth::institution(
        &SynthOptions {
            institutions: 1,
            seed: 1,
        },
        0,
    );
    let number = roster.institution.number.clone();
    let empty = pg.counts().await.unwrap();

    // Many more abandoned transactions than pooled connections: each
    // must release its locks and never hand a connection on mid-transaction.
    for day in 0..(POOL_SIZE as u8 + 4) {
        import(pg, &roster, &ctx(day, Mode::Full, true)).await;
        let mut tx = pg.begin_import().await.unwrap();
        assert!(tx.institution(&number).await.unwrap().is_none());
        drop(tx);
    }
    // Rolled back, the connections went back to the pool rather than
    // being replaced: a dry run costs no reconnect.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = pg.conn().await.unwrap();
    let created: usize = Object::id(&c).to_string().parse().unwrap();
    assert!(created < 5, "{created} connections were opened");
    drop(c);

    let mut tx = pg.begin_import().await.unwrap();
    let row = InstitutionRow {
        number: &number,
        name: "x",
        kind: InstitutionKind::School,
        municipality_code: None,
        source_system: None,
        school_year: None,
        digest: 1,
    };
    tx.insert_institution(&row, ctx(0, Mode::Full, false).now)
        .await
        .unwrap();
    // A failing statement: the transaction is aborted; dropping it must
    // still leave a usable pool.
    assert!(tx
        .insert_institution(&row, ctx(0, Mode::Full, false).now)
        .await
        .is_err());
    drop(tx);
    assert_eq!(pg.counts().await.unwrap(), empty);
    assert_eq!(pg.stored_head().await.unwrap(), Head::default());

    // The import lock is released: a real import goes through.
    let s = import(pg, &roster, &ctx(0, Mode::Full, false)).await;
    assert_eq!(s.persons.created, roster.persons.len());
    assert_eq!(
        pg.counts().await.unwrap().persons,
        roster.persons.len() as i64
    );
    db.drop_db().await;
}

#[tokio::test]
async fn migrations_race_and_refuse_newer_schemas() {
    let Some(db) = test_db().await else { return };
    let others = [
        db.another_store().await,
        db.another_store().await,
        db.another_store().await,
    ];
    let results = futures_util::future::join_all(
        others
            .iter()
            .map(|s| s.migrate())
            .chain([db.store.migrate()]),
    )
    .await;
    let applied: usize = results.into_iter().map(|r| r.unwrap().applied.len()).sum();
    assert_eq!(applied, POSTGRES_MIGRATIONS.len());
    let again = db.store.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    // The newest version (numbers may have gaps between branches).
    let newest = POSTGRES_MIGRATIONS.last().map_or(0, |m| m.version);
    assert_eq!(again.version, newest);
    db.store.ping().await.unwrap();
    assert_eq!(db.store.dialect(), "postgres");

    let c = db.store.conn().await.unwrap();
    c.batch_execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
        .await
        .unwrap();
    drop(c);
    match db.store.migrate().await {
        Err(Error::SchemaTooNew { found: 999, known }) if known == newest => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    for s in others {
        s.pool.close();
    }
    db.drop_db().await;
}

#[tokio::test]
async fn concurrent_appends_keep_the_chain() {
    let Some(db) = test_db().await else { return };
    db.store.migrate().await.unwrap();
    let stores = Arc::new([db.another_store().await, db.another_store().await]);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let stores = stores.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let ev = NewEvent::new(format!("user:{t}"), "audit.search")
                    .subjects(vec![t, i])
                    .details(serde_json::json!({ "q": "ø" }));
                stores[(t as usize + i as usize) % 2]
                    .append_audit(datetime!(2026-09-01 08:00 UTC), vec![ev.clone(), ev])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(db
        .store
        .append_audit(datetime!(2026-09-01 08:00 UTC), Vec::new())
        .await
        .is_ok());
    let snap = snapshot(&db.store, &[]).await;
    assert_eq!(snap.head.seq, 160);
    assert_eq!(snap.counts.audit_events, 160);
    let page = db.store.audit_page(150, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![151, 152, 153, 154, 155]
    );
    assert_eq!(page[0], snap.events[150]);
    for s in Arc::try_unwrap(stores).ok().unwrap() {
        s.pool.close();
    }
    db.drop_db().await;
}

#[tokio::test]
async fn connect_reports_a_redacted_url() {
    let err = match PgStore::connect("postgres://someone:s3cret@127.0.0.1:1/nothing").await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to port 1"),
    };
    assert!(err.contains("someone:***@127.0.0.1:1/nothing"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

type Times = Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, (u32, Duration)>>>;

/// Times every ImportTx call, for the load test.
struct Timed<'a> {
    inner: Box<dyn ImportTx + 'a>,
    times: Times,
}

macro_rules! timed {
    ($self:ident, $name:literal, $call:expr) => {{
        let t = std::time::Instant::now();
        let out = $call.await;
        let mut m = $self.times.lock().unwrap();
        let e = m.entry($name).or_default();
        e.0 += 1;
        e.1 += t.elapsed();
        out
    }};
}

#[async_trait]
impl ImportTx for Timed<'_> {
    async fn institution(&mut self, n: &str) -> Result<Option<Existing>> {
        timed!(self, "institution", self.inner.institution(n))
    }
    async fn insert_institution(
        &mut self,
        r: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<i64> {
        timed!(
            self,
            "insert_institution",
            self.inner.insert_institution(r, now)
        )
    }
    async fn update_institution(
        &mut self,
        id: i64,
        r: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(
            self,
            "update_institution",
            self.inner.update_institution(id, r, now)
        )
    }
    async fn persons(&mut self, u: &[&str]) -> Result<Vec<(String, Existing)>> {
        timed!(self, "persons", self.inner.persons(u))
    }
    async fn insert_persons(
        &mut self,
        r: &[PersonRow<'_>],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        timed!(self, "insert_persons", self.inner.insert_persons(r, now))
    }
    async fn update_persons(
        &mut self,
        r: &[(i64, PersonRow<'_>)],
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(self, "update_persons", self.inner.update_persons(r, now))
    }
    async fn set_inactive(&mut self, ids: &[i64], since: Option<Date>) -> Result<()> {
        timed!(self, "set_inactive", self.inner.set_inactive(ids, since))
    }
    async fn insert_changes(
        &mut self,
        rows: &[tilgang_core::store::changes::NewChange],
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(self, "insert_changes", self.inner.insert_changes(rows, now))
    }
    async fn unlinked_persons(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        timed!(self, "unlinked_persons", self.inner.unlinked_persons(ids))
    }
    async fn groups(&mut self, i: i64) -> Result<Vec<(String, Existing)>> {
        timed!(self, "groups", self.inner.groups(i))
    }
    async fn insert_groups(
        &mut self,
        i: i64,
        r: &[(&Group, i64)],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        timed!(self, "insert_groups", self.inner.insert_groups(i, r, now))
    }
    async fn update_groups(&mut self, r: &[(i64, &Group, i64)], now: OffsetDateTime) -> Result<()> {
        timed!(self, "update_groups", self.inner.update_groups(r, now))
    }
    async fn roles(&mut self, i: i64) -> Result<Vec<((i64, RoleKind), Existing)>> {
        timed!(self, "roles", self.inner.roles(i))
    }
    async fn insert_roles(
        &mut self,
        i: i64,
        r: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(self, "insert_roles", self.inner.insert_roles(i, r, now))
    }
    async fn update_roles(&mut self, r: &[(i64, &Role, i64)], now: OffsetDateTime) -> Result<()> {
        timed!(self, "update_roles", self.inner.update_roles(r, now))
    }
    async fn memberships(&mut self, i: i64) -> Result<Vec<((i64, i64), Existing)>> {
        timed!(self, "memberships", self.inner.memberships(i))
    }
    async fn insert_memberships(&mut self, r: &[(i64, i64)], now: OffsetDateTime) -> Result<()> {
        timed!(
            self,
            "insert_memberships",
            self.inner.insert_memberships(r, now)
        )
    }
    async fn contacts(&mut self, i: i64) -> Result<Vec<((i64, i64), Existing)>> {
        timed!(self, "contacts", self.inner.contacts(i))
    }
    async fn insert_contacts(
        &mut self,
        i: i64,
        r: &[ContactRow],
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(
            self,
            "insert_contacts",
            self.inner.insert_contacts(i, r, now)
        )
    }
    async fn update_contacts(
        &mut self,
        r: &[(i64, ContactRow)],
        now: OffsetDateTime,
    ) -> Result<()> {
        timed!(self, "update_contacts", self.inner.update_contacts(r, now))
    }
    async fn end_rows(&mut self, t: EndTable, ids: &[i64], on: Date) -> Result<()> {
        timed!(self, "end_rows", self.inner.end_rows(t, ids, on))
    }
    async fn reopen_rows(&mut self, t: EndTable, ids: &[i64]) -> Result<()> {
        timed!(self, "reopen_rows", self.inner.reopen_rows(t, ids))
    }
    async fn audit_head(&mut self) -> Result<Head> {
        timed!(self, "audit_head", self.inner.audit_head())
    }
    async fn import_digest(&mut self, i: i64) -> Result<Option<i64>> {
        timed!(self, "import_digest", self.inner.import_digest(i))
    }
    async fn set_import_digest(&mut self, i: i64, d: Option<i64>) -> Result<()> {
        timed!(
            self,
            "set_import_digest",
            self.inner.set_import_digest(i, d)
        )
    }
    async fn insert_audit(&mut self, e: &[Event]) -> Result<()> {
        timed!(self, "insert_audit", self.inner.insert_audit(e))
    }
    async fn commit(self: Box<Self>) -> Result<()> {
        let times = self.times.clone();
        let t = std::time::Instant::now();
        let out = self.inner.commit().await;
        let mut m = times.lock().unwrap();
        let e = m.entry("commit").or_default();
        e.0 += 1;
        e.1 += t.elapsed();
        out
    }
}

struct TimedStore<'a> {
    store: &'a PgStore,
    times: Times,
}

#[async_trait]
impl RosterStore for TimedStore<'_> {
    async fn begin_import(&self) -> Result<Box<dyn ImportTx + '_>> {
        let t = std::time::Instant::now();
        let inner = self.store.begin_import().await?;
        {
            let mut m = self.times.lock().unwrap();
            let e = m.entry("begin").or_default();
            e.0 += 1;
            e.1 += t.elapsed();
        }
        Ok(Box::new(Timed {
            inner,
            times: self.times.clone(),
        }))
    }
    async fn institutions(&self) -> Result<Vec<InstitutionInfo>> {
        self.store.institutions().await
    }
    async fn institution_roster(
        &self,
        n: &str,
    ) -> Result<Option<(InstitutionRoster, Vec<StoredPerson>)>> {
        self.store.institution_roster(n).await
    }
    async fn counts(&self) -> Result<Counts> {
        self.store.counts().await
    }
}

/// This process's user and system CPU time (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// A national-scale load: `TILGANG_BENCH_INSTITUTIONS=1300 cargo test
/// -p tilgang-store --release -- --ignored --nocapture national`.
/// Rosters are generated and prepared first, so only the store is timed.
#[tokio::test]
#[ignore]
async fn national_import_speed() {
    let Some(db) = test_db().await else { return };
    db.store.migrate().await.unwrap();
    // For trying schema variants: SQL run after migrating.
    if let Ok(sql) = std::env::var("TILGANG_BENCH_SQL") {
        db.store
            .conn()
            .await
            .unwrap()
            .batch_execute(&sql)
            .await
            .unwrap();
    }
    let n: usize = std::env::var("TILGANG_BENCH_INSTITUTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1300);
    let opts = SynthOptions {
        institutions: n,
        seed: 7,
    };
    let t = std::time::Instant::now();
    let rosters: Vec<_> = (0..n)
        .map(|i| {
            let parsed = Parsed {
                location: Location::file("bench"),
                roster: synth::institution(&opts, i),
            };
            prepare(parsed, &keys(), None)
        })
        .collect();
    eprintln!("generated {n} institutions in {:?}", t.elapsed());
    let times = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let timed = TimedStore {
        store: &db.store,
        times: times.clone(),
    };
    for (day, label) in [(0u8, "first import"), (1, "unchanged re-import")] {
        times.lock().unwrap().clear();
        let c = ctx(day, Mode::Full, false);
        let cpu0 = cpu_seconds();
        let t = std::time::Instant::now();
        // As the import run does: a commit per 32 institutions.
        for chunk in rosters.chunks(32) {
            let mut tx = timed.begin_import().await.unwrap();
            for p in chunk {
                let s = apply(&mut *tx, p, &c).await.unwrap();
                assert_eq!(s.changed(), day == 0);
            }
            tx.commit().await.unwrap();
        }
        let busy = t.elapsed();
        let counts = db.store.counts().await.unwrap();
        eprintln!(
            "{label} of {n} institutions: {busy:?} in the store ({:.1} s of CPU in the client); {counts:?}",
            cpu_seconds() - cpu0
        );
        for (k, (calls, d)) in times.lock().unwrap().iter() {
            eprintln!("  {k:20} {calls:6} {d:?}");
        }
    }
    db.drop_db().await;
}
