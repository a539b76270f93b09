//! Test fixtures on real databases: [`TestDb`] gives each test a fresh
//! SQLite file, or a fresh PostgreSQL database when
//! `TILGANG_TEST_POSTGRES_URL` is set, and [`TestServer`] starts the real
//! server in-process on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tilgang_core::crypto::DataKeys;
use tilgang_core::store::Store;
use tilgang_core::ManualClock;
use time::macros::datetime;

/// The dialects a test runs on: SQLite always, PostgreSQL when configured.
pub fn dialects() -> Vec<Dialect> {
    let mut d = vec![Dialect::Sqlite];
    if let Ok(url) = std::env::var("TILGANG_TEST_POSTGRES_URL") {
        if !url.is_empty() {
            d.push(Dialect::Postgres(url));
        }
    }
    d
}

#[derive(Debug, Clone)]
pub enum Dialect {
    Sqlite,
    Postgres(String),
}

/// A fresh, migrated database for one test; dropped with it.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub keys: DataKeys,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    pub async fn new(dialect: &Dialect) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_admin) = match dialect {
            Dialect::Sqlite => (
                format!("sqlite://{}", dir.path().join("test.db").display()),
                None,
            ),
            Dialect::Postgres(admin) => {
                let name = format!(
                    "tilgang_t_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    rand_suffix()
                );
                pg_exec(admin, &format!("CREATE DATABASE {name}")).await;
                (with_database(admin, &name), Some((admin.clone(), name)))
            }
        };
        let store = tilgang_store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            url,
            keys: DataKeys::from_master(&[7; 32]),
            clock: Arc::new(ManualClock::new(datetime!(2026-11-23 08:00 UTC))),
            _dir: dir,
            pg_admin,
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Imports one native document (full mode) and panics on any problem.
    pub async fn import_json(&self, doc: &serde_json::Value) {
        use tilgang_core::roster::import::{run, Source};
        let path = self.dir().join(format!(
            "fixture-{}.json",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, doc.to_string()).unwrap();
        let opts = run::Options {
            format: None,
            institution: None,
            delta: false,
            dry_run: false,
            actor: "test".into(),
        };
        run::run(
            &*self.store,
            &self.keys,
            &*self.clock,
            &Source::open(&path).unwrap(),
            &opts,
            &run::NoProgress,
        )
        .await
        .unwrap();
    }

    /// Runs raw SQL against the database (for tamper tests).
    pub async fn raw(&self, sql: &str) {
        match &self.pg_admin {
            None => {
                let path = self.url.trim_start_matches("sqlite://").to_owned();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite_free::open(&path);
                    rusqlite_free::exec(&conn, &sql);
                })
                .await
                .unwrap();
            }
            Some(_) => pg_exec(&self.url, sql).await,
        }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 100_000
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin.take() {
            // Best effort, on its own runtime: the test's may be gone.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pg_exec(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join();
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[scheme_end..].rfind('/') {
        Some(i) => format!("{}/{name}{query}", &base[..scheme_end + i]),
        None => format!("{base}/{name}{query}"),
    }
}

async fn pg_exec(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let handle = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = handle.await;
}

/// Raw SQLite access without a second SQLite dependency: the store crate
/// re-exports what tests need.
mod rusqlite_free {
    pub fn open(path: &str) -> tilgang_store::sqlite::RawConnection {
        tilgang_store::sqlite::RawConnection::open(path).unwrap()
    }
    pub fn exec(conn: &tilgang_store::sqlite::RawConnection, sql: &str) {
        conn.execute_batch(sql).unwrap();
    }
}

/// The real server, in-process, on a free port.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(dialect: &Dialect) -> TestServer {
        Self::start_with(dialect, Default::default()).await
    }

    /// A server with other login settings.
    pub async fn start_with(
        dialect: &Dialect,
        login: tilgang_core::identity::login::LoginConfig,
    ) -> TestServer {
        let db = TestDb::new(dialect).await;
        let (base, task) = serve(&db, login, None).await;
        TestServer {
            base,
            http: reqwest::Client::new(),
            db,
            task,
        }
    }

    /// A server for watching a stream: exports in pages of `page_size`
    /// persons, and sockets with small send buffers (so the kernel holds
    /// little of a response the client has not read yet).
    pub async fn start_streaming(dialect: &Dialect, page_size: usize) -> TestServer {
        let db = TestDb::new(dialect).await;
        let api = tilgang_web::api::ApiConfig {
            export_page_size: page_size,
            ..Default::default()
        };
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // Accepted sockets inherit it; setting it turns off autotuning.
        socket.set_send_buffer_size(SMALL_SOCKET_BUFFER).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        let (base, task) = serve_on(listener, &db, Default::default(), None, api).await;
        TestServer {
            base,
            http: reqwest::Client::new(),
            db,
            task,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// Serves the test database on a free port; returns the base URL.
async fn serve(
    db: &TestDb,
    login: tilgang_core::identity::login::LoginConfig,
    smtp: Option<tilgang_web::notices::SmtpConfig>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, db, login, smtp, Default::default()).await
}

/// The socket buffer size (bytes) of [`TestServer::start_streaming`]; the
/// kernel doubles what is asked.
pub const SMALL_SOCKET_BUFFER: u32 = 8 * 1024;

async fn serve_on(
    listener: tokio::net::TcpListener,
    db: &TestDb,
    login: tilgang_core::identity::login::LoginConfig,
    smtp: Option<tilgang_web::notices::SmtpConfig>,
    api: tilgang_web::api::ApiConfig,
) -> (String, tokio::task::JoinHandle<()>) {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(tilgang_web::AppState {
        store: db.store.clone(),
        clock: db.clock.clone(),
        metrics: Default::default(),
        version: "test",
        login,
        hashing: tilgang_web::hashing_permits(),
        keys: Arc::new(db.keys.clone()),
        public_url: base.clone(),
        security_contacts: vec!["mailto:security@tilgang.example".into()],
        oidc: Default::default(),
        smtp,
        api: tilgang_web::api::ApiState::new(api),
    });
    let task = tokio::spawn(async move {
        let _ = tilgang_web::serve(listener, state, std::future::pending()).await;
    });
    (base, task)
}

impl TestServer {
    /// A second replica on the same database (and key), as a load
    /// balancer would put beside the first; stops when the handle is
    /// aborted.
    pub async fn replica(&self) -> (String, tokio::task::JoinHandle<()>) {
        serve(&self.db, Default::default(), None).await
    }

    /// A server whose e-mail notices go to the SMTP server at
    /// `127.0.0.1:port` (plain SMTP, as for a relay on localhost).
    pub async fn start_with_smtp(dialect: &Dialect, port: u16) -> TestServer {
        let db = TestDb::new(dialect).await;
        let smtp = tilgang_web::notices::SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: "tilgang <noreply@tilgang.example>".into(),
            username: None,
            password: None,
            starttls: false,
        };
        let (base, task) = serve(&db, Default::default(), Some(smtp)).await;
        TestServer {
            base,
            http: reqwest::Client::new(),
            db,
            task,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A small native roster document: institution `number` with two pupils in
/// class 1.A, a teacher, and a parent. `extra` is merged into the document.
pub fn small_roster(number: &str) -> serde_json::Value {
    serde_json::json!({
        "format": "tilgang-roster/1",
        "institution": {"number": number, "name": format!("Skole {number}"), "type": "school", "municipality_code": "101"},
        "source_system": "test",
        "school_year": "2026/2027",
        "persons": [
            {"user_id": format!("{number}p1"), "given_name": "Alma", "family_name": "Jensen", "cpr": "3002201234", "birth_date": "2020-02-03",
             "gender": "K", "roles": [{"role": "Elev", "grade_level": "1", "main_group": "1A", "student_number": "17"}]},
            {"user_id": format!("{number}p2"), "given_name": "Bo", "family_name": "Hansen", "protected": true,
             "alias_given_name": "Anders", "alias_family_name": "And",
             "roles": [{"role": "Elev", "grade_level": "1", "main_group": "1A"}]},
            {"user_id": format!("{number}t1"), "given_name": "Karen", "family_name": "Nielsen", "email": "kn@skole.dk",
             "roles": [{"role": "Lærer", "initials": "KN", "occupation": "Lærer"}]},
            {"user_id": format!("{number}m1"), "given_name": "Mette", "family_name": "Jensen", "cpr": "3102851234",
             "phones": [{"kind": "mobile", "number": "+4512345678", "protectable": true}],
             "address": {"street": "Skolevej 1", "postal_code": "8000", "city": "Aarhus C"}}
        ],
        "groups": [
            {"id": "1A", "name": "1.A", "type": "Hovedgruppe", "level": "1", "line": "A", "from": "2026-08-01", "to": "2027-06-30",
             "members": [format!("{number}p1"), format!("{number}p2"), format!("{number}t1")]},
            {"id": "1", "name": "1. årgang", "type": "Årgang", "level": "1", "members": [format!("{number}p1"), format!("{number}p2")]}
        ],
        "contacts": [
            {"pupil": format!("{number}p1"), "contact": format!("{number}m1"), "relation": "Mor", "custody": true, "access_level": 1}
        ]
    })
}

/// [`small_roster`] with staff for the rights tests: a substitute
/// `{number}v1` (Vikar) and a leader `{number}l1` in `leader_roles`.
pub fn staff_roster(number: &str, leader_roles: &[&str]) -> serde_json::Value {
    let mut doc = small_roster(number);
    let roles: Vec<serde_json::Value> = leader_roles
        .iter()
        .map(|r| serde_json::json!({"role": r}))
        .collect();
    if let Some(persons) = doc["persons"].as_array_mut() {
        persons.push(
            serde_json::json!({"user_id": format!("{number}v1"), "given_name": "Viggo",
            "family_name": "Vikar", "roles": [{"role": "Vikar"}]}),
        );
        persons.push(
            serde_json::json!({"user_id": format!("{number}l1"), "given_name": "Lene",
            "family_name": "Leder", "roles": roles}),
        );
    }
    doc
}

/// A password that passes every policy, for test accounts.
pub const PASSWORD: &str = "rolig blæksprutte spiser kanelsnegle";

impl TestServer {
    /// Gives `user_id` the password [`PASSWORD`].
    pub async fn set_password(&self, user_id: &str) {
        use tilgang_core::identity::login::{self, SetPassword};
        let account = self.db.store.account(user_id).await.unwrap().unwrap();
        let r = login::set_password(
            &*self.db.store,
            &*self.db.clock,
            &Default::default(),
            &account,
            PASSWORD,
            "test",
        )
        .await
        .unwrap();
        assert!(matches!(r, SetPassword::Done), "{r:?}");
    }
}

/// A browser stand-in for HTTP tests: follows no redirects and keeps the
/// cookies the server sets (`__Host-` ones too, although the test server
/// speaks plain HTTP), sending them back with every request.
pub struct Visitor {
    pub base: String,
    http: reqwest::Client,
    cookies: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Visitor {
    pub fn new(server: &TestServer) -> Visitor {
        Visitor {
            base: server.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    /// The value of a cookie the server set and has not removed.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, res: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap();
        for v in res.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((name, rest)) = v.to_str().ok().and_then(|v| v.split_once('=')) else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("").to_owned();
            if rest.contains("Max-Age=0") || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value);
            }
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    /// Posts a form as it is, with the visitor's cookies.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    /// Posts a file as a `multipart/form-data` form (fields first, then
    /// the file as `file_field`), with the visitor's cookies.
    pub async fn post_file(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        file: &[u8],
    ) -> reqwest::Response {
        const BOUNDARY: &str = "tilgang-test-boundary-7f3a";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"upload.csv\"\r\nContent-Type: text/csv\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    /// Fetches the page at `page` and posts a form to `action` with the
    /// page's CSRF token added, as a browser submitting it would.
    pub async fn submit(
        &self,
        page: &str,
        action: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.get(page).await.text().await.unwrap();
        let csrf = csrf_of(&html).unwrap_or_default();
        let mut fields = form.to_vec();
        fields.push(("csrf", &csrf));
        self.post(action, &fields).await
    }

    /// Logs in through the login form; returns the form's answer (303 on
    /// success).
    pub async fn login(&self, user_id: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/login",
            "/login",
            &[("login", user_id), ("password", password)],
        )
        .await
    }
}

/// The CSRF token in a page's first form.
pub fn csrf_of(html: &str) -> Option<String> {
    Some(
        html.split("name=\"csrf\" value=\"")
            .nth(1)?
            .split('"')
            .next()?
            .to_owned(),
    )
}
