//! Template data directories: one `initdb` plus fixture load per template key and test process.
//!
//! Building one takes ~0.7 s; copying it takes ~0.1 s, so every `Cluster::start` copies a
//! template (`local`) instead of running `initdb` itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::binaries::{chown_to_pg_user, pg_bin_dir, server_command};
use super::command::{run, run_psql, PsqlTarget, QUIET_LOG};
use super::dirs::{append_file, make_dir, remove_at_exit, write_private};
use super::options::{ClusterOptions, Layout, PasswordEncryption};
use super::secrets::{random_hex, secrets_for};
use super::server::{pg_ctl_stop, start_on_free_port};
use super::sql::{drop_roles_script, sql_ident, sql_literal, verifier};
use super::{env_flag, FIXTURE_SQL, HARNESS_USER, LOCAL_HOST, SUPERUSER};

/// What makes two template data directories differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TemplateKey {
    password_encryption: PasswordEncryption,
    main_db: String,
    layout: Layout,
    drop_roles: Vec<String>,
}

impl TemplateKey {
    /// Options that give the same template data directory give the same key.
    fn of(opts: &ClusterOptions) -> TemplateKey {
        let mut drop_roles = opts.drop_roles.clone();
        drop_roles.sort();
        drop_roles.dedup();
        TemplateKey {
            password_encryption: opts.password_encryption,
            main_db: opts.main_db.clone(),
            layout: opts.layout,
            drop_roles,
        }
    }
}

/// A stopped, prepared data directory that `local` copies.
pub(super) struct Template {
    pub(super) root: PathBuf,
    pub(super) data: PathBuf,
    /// Password of the Supabase LOGIN roles in the template.
    pub(super) password: String,
    pub(super) harness_password: String,
}

/// A key's template: `None` until built; a failed build is kept too, so it fails once per process.
type TemplateSlot = Arc<Mutex<Option<Result<Arc<Template>, String>>>>;

fn templates() -> &'static Mutex<HashMap<TemplateKey, TemplateSlot>> {
    static T: OnceLock<Mutex<HashMap<TemplateKey, TemplateSlot>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The data directory of the template clusters of `opts` are copied from (built on first
/// use), for the test that proves later clusters copy it instead of running `initdb` again.
pub fn template_data_dir(opts: &ClusterOptions) -> Result<PathBuf, String> {
    template_for(opts).map(|template| template.data.clone())
}

/// The template for `opts`, built on first use.
pub(super) fn template_for(opts: &ClusterOptions) -> Result<Arc<Template>, String> {
    let key = TemplateKey::of(opts);
    let slot = {
        let mut map = templates().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    };
    // One builder per key; other keys build in parallel.
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let started = Instant::now();
        let built = build_template(&key);
        if built.is_ok() && env_flag("PMOVES_TEST_PG_VERBOSE") {
            eprintln!("pg harness: template {key:?} built in {} ms", started.elapsed().as_millis());
        }
        *guard = Some(built);
    }
    guard.as_ref().expect("template slot filled").clone()
}

/// `initdb`, configuration, fixture, harness role (and dropped roles), then a clean stop.
fn build_template(key: &TemplateKey) -> Result<Arc<Template>, String> {
    let bin = pg_bin_dir()?;
    let root = make_dir("tpl-")?;
    remove_at_exit(&root);
    let data = root.join("data");
    let log = root.join("server.log");
    let password = random_hex(16);
    let harness_password = random_hex(16);
    let secrets = secrets_for(&[&password, &harness_password]);
    let method = key.password_encryption.setting();

    // initdb: the bootstrap superuser is supabase_admin, with the template password.
    let pwfile = root.join("pwfile");
    write_private(&pwfile, password.as_bytes())?;
    chown_to_pg_user(&pwfile)?;
    let mut initdb = server_command(&bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"])
        .arg(format!("--auth={method}"))
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("--wal-segsize=1")
        .current_dir(&root);
    run(&mut initdb, "initdb", None, &secrets)?;
    let _ = std::fs::remove_file(&pwfile);

    append_file(
        &data.join("postgresql.conf"),
        &format!(
            "\n# --- pmoves-secrets test harness (template) ---\n\
             listen_addresses = '{LOCAL_HOST}'\n\
             password_encryption = '{method}'\n\
             fsync = off\n\
             full_page_writes = off\n\
             shared_buffers = 16MB\n\
             max_connections = 40\n\
             min_wal_size = 2MB\n\
             max_wal_size = 32MB\n\
             autovacuum = off\n\
             jit = off\n\
             logging_collector = off\n\
             log_destination = 'stderr'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_statement = 'none'\n\
             timezone = 'UTC'\n"
        ),
    )?;
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "# pmoves-secrets test harness: passwords only, loopback only\n\
             local all {HARNESS_USER} md5\n\
             host  all {HARNESS_USER} {LOCAL_HOST}/32 md5\n\
             local all all {method}\n\
             host  all all {LOCAL_HOST}/32 {method}\n"
        ),
    )
    .map_err(|e| format!("cannot write pg_hba.conf in {}: {e}", data.display()))?;
    chown_to_pg_user(&data.join("pg_hba.conf"))?;

    let port = start_on_free_port(&data, &log, &root)?;
    let target = PsqlTarget { host: LOCAL_HOST.to_string(), port, db: "postgres".to_string() };

    // Fixture, then the harness role, then optional role drops; all as supabase_admin.
    let result = (|| -> Result<(), String> {
        run_psql(
            &target,
            SUPERUSER,
            &password,
            &[
                "-v",
                &format!("pgpass={password}"),
                "-v",
                &format!("maindb={}", key.main_db),
                "-v",
                &format!("layout={}", key.layout.fixture_name()),
            ],
            None,
            FIXTURE_SQL,
            &secrets,
            "loading docker/init/supabase-fixture.sql",
        )?;
        // An md5 verifier for the harness's own role: psql's SCRAM exchange (4096 rounds of
        // OpenSSL's HMAC per helper query) was a fifth of the suite's CPU time. The Supabase
        // roles keep the cluster's method; pg_hba.conf names the harness role alone for md5.
        let mut sql = format!(
            "CREATE ROLE {} WITH SUPERUSER LOGIN PASSWORD {};\n",
            sql_ident(HARNESS_USER),
            sql_literal(&verifier(PasswordEncryption::Md5, HARNESS_USER, &harness_password))
        );
        if !key.drop_roles.is_empty() {
            let mut dbs = vec!["postgres".to_string(), key.main_db.clone()];
            if key.layout == Layout::Current {
                dbs.push("_supabase".to_string());
            }
            dbs.dedup();
            sql.push_str(&drop_roles_script(&key.drop_roles, &dbs));
        }
        sql.push_str("CHECKPOINT;\n");
        run_psql(&target, SUPERUSER, &password, &[], Some(QUIET_LOG), &sql, &secrets, "preparing the template")?;
        Ok(())
    })();
    let stopped = pg_ctl_stop(&data, "fast");
    result?;
    stopped?;
    Ok(Arc::new(Template { root, data, password, harness_password }))
}
