//! The copies of secrets the services keep in the database, written and read back by an
//! implementation other than the tool's: Python `cryptography` in the test virtualenv
//! (scripts/ensure-compose.sh), laid out as Supavisor's Cloak vault and `Realtime.Crypto` store
//! them. Rows go into the tables the fixture shapes as the services' migrations make them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::pg::Cluster;
use super::{bin, env_value, set_line};

/// The other implementation: each operation reads the key from `$KEY` and the data from stdin.
const SCRIPT: &str = r#"
import base64, os, sys
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
op, key, data = sys.argv[1], os.environ["KEY"].encode(), sys.stdin.buffer.read()
header = b"\x01\x0aAES.GCM.V1"  # Cloak: type 1, tag length, tag "AES.GCM.V1"
if op == "supavisor-encrypt":
    iv = os.urandom(16)
    sealed = AESGCM(key).encrypt(iv, data, b"AES256GCM")
    out = (header + iv + sealed[-16:] + sealed[:-16]).hex()
elif op == "supavisor-decrypt":
    raw = bytes.fromhex(data.decode())
    assert raw[:12] == header, "not a Cloak AES.GCM.V1 value"
    iv, tag, body = raw[12:28], raw[28:44], raw[44:]
    out = AESGCM(key).decrypt(iv, body + tag, b"AES256GCM").decode()
elif op == "realtime-encrypt":
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = base64.b64encode(enc.update(padder.update(data) + padder.finalize()) + enc.finalize()).decode()
elif op == "realtime-decrypt":
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = dec.update(base64.b64decode(data)) + dec.finalize()
    out = (unpadder.update(padded) + unpadder.finalize()).decode()
else:
    sys.exit("unknown operation")
sys.stdout.write(out)
"#;

/// Python with `cryptography`, from the test virtualenv.
pub struct OtherCrypto {
    python: PathBuf,
}

impl OtherCrypto {
    /// The virtualenv's Python (`PMOVES_TEST_COMPOSE_BIN`, else `target/compose-venv/bin`); `None`
    /// after saying the test skipped.
    pub fn find(test: &str) -> Option<OtherCrypto> {
        let dir = std::env::var_os("PMOVES_TEST_COMPOSE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compose-venv/bin"));
        let python = dir.join("python");
        let works = Command::new(&python)
            .args(["-c", "import cryptography"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(OtherCrypto { python });
        }
        super::skipped(&format!(
            "{test}: no Python with cryptography in {} (run scripts/ensure-compose.sh)",
            dir.display()
        ));
        None
    }

    fn run(&self, op: &str, key: &str, data: &str) -> Option<String> {
        let mut child = Command::new(&self.python)
            .args(["-c", SCRIPT, op])
            .env("KEY", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        child.stdin.take().expect("stdin").write_all(data.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("python finishes");
        out.status.success().then(|| String::from_utf8(out.stdout).expect("utf-8"))
    }

    /// `db_pass_encrypted` as Supavisor's vault writes it, in hex.
    pub fn supavisor_encrypt(&self, key: &str, text: &str) -> String {
        self.run("supavisor-encrypt", key, text).expect("encrypts")
    }

    /// The text of a Supavisor vault value (hex), or `None` when `key` does not decrypt it.
    pub fn supavisor_decrypt(&self, key: &str, hex: &str) -> Option<String> {
        self.run("supavisor-decrypt", key, hex)
    }

    /// A value as `Realtime.Crypto` writes it (base64).
    pub fn realtime_encrypt(&self, key: &str, text: &str) -> String {
        self.run("realtime-encrypt", key, text).expect("encrypts")
    }

    /// The text of a Realtime value, or `None` when `key` does not decrypt it.
    pub fn realtime_decrypt(&self, key: &str, stored: &str) -> Option<String> {
        self.run("realtime-decrypt", key, stored)
    }
}

/// `'text'` as an SQL literal.
pub fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The row `pooler.exs` makes: user `pgbouncer` of tenant `pmoves`, `password` encrypted under
/// `vault_key`.
pub fn seed_supavisor(pg: &Cluster, crypto: &OtherCrypto, vault_key: &str, password: &str) {
    let hex = crypto.supavisor_encrypt(vault_key, password);
    pg.psql(&format!(
        "INSERT INTO _supavisor.users (id, db_user_alias, db_user, db_pass_encrypted, is_manager, mode_type, \
         tenant_external_id) VALUES (gen_random_uuid(), 'pgbouncer', 'pgbouncer', '\\x{hex}'::bytea, true, \
         'transaction', 'pmoves')"
    ));
}

/// The tenant `seeds.exs` makes, as `tenant`: its JWT secret and its `postgres_cdc_rls`
/// connection, encrypted under `key`.
pub fn seed_realtime(pg: &Cluster, crypto: &OtherCrypto, key: &str, tenant: &str, jwt_secret: &str, password: &str) {
    let enc = |text: &str| lit(&crypto.realtime_encrypt(key, text));
    pg.psql_in(
        pg.main_db(),
        &format!(
            "INSERT INTO _realtime.tenants (id, name, external_id, jwt_secret) VALUES (gen_random_uuid(), {t}, {t}, {jwt}); \
             INSERT INTO _realtime.extensions (id, type, settings, tenant_external_id) VALUES (gen_random_uuid(), \
             'postgres_cdc_rls', jsonb_build_object('db_host', {host}, 'db_port', {port}, 'db_name', {name}, \
             'db_user', {user}, 'db_password', {pw}, 'region', 'us-east-1', 'poll_interval_ms', 100, \
             'publication', 'supabase_realtime', 'slot_name', 'supabase_realtime_replication_slot'), {t})",
            t = lit(tenant),
            jwt = enc(jwt_secret),
            host = enc("db"),
            port = enc("5432"),
            name = enc(pg.main_db()),
            user = enc("supabase_admin"),
            pw = enc(password),
        ),
    );
}

/// Logflare's single-tenant user (its `api_key` the public token) and its two access tokens.
pub fn seed_logflare(pg: &Cluster, public: &str, private: &str) {
    pg.psql(&format!(
        "INSERT INTO _analytics.users (id, email, provider, token, api_key, provider_uid) \
         VALUES (1, 'default@logflare.app', 'default', gen_random_uuid()::text, {p}, 'default'); \
         INSERT INTO _analytics.oauth_access_tokens (resource_owner_id, token, scopes, description) VALUES \
         (1, {p}, 'public', 'LOGFLARE_PUBLIC_ACCESS_TOKEN'), (1, {q}, 'private', 'LOGFLARE_PRIVATE_ACCESS_TOKEN')",
        p = lit(public),
        q = lit(private),
    ));
}

/// A generated `.env` (mode 0600) pointing at `pg`, in its own directory.
pub struct StackEnv {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl StackEnv {
    pub fn new(pg: &Cluster) -> StackEnv {
        let out = bin().arg("generate-keys").output().expect("runs");
        assert!(out.status.success());
        let mut text = String::from_utf8(out.stdout).expect("utf-8");
        for (key, value) in [
            ("POSTGRES_HOST", pg.host().to_owned()),
            ("POSTGRES_PORT", pg.port().to_string()),
            ("POSTGRES_DB", pg.main_db().to_owned()),
            ("POSTGRES_PASSWORD", pg.password().to_owned()),
        ] {
            text = set_line(&text, key, &value);
        }
        let dir = super::tempdir();
        let path = dir.path().join(".env");
        std::fs::write(&path, text).expect("write .env");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        StackEnv { dir, path }
    }

    /// The file's current value of `key`.
    pub fn get(&self, key: &str) -> String {
        let text = std::fs::read_to_string(&self.path).expect("read .env");
        env_value(&text, key).unwrap_or_else(|| panic!("{key} not in the .env"))
    }

    /// Sets `key` to `value` in the file.
    pub fn set(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.path).expect("read .env");
        std::fs::write(&self.path, set_line(&text, key, value)).expect("write .env");
    }

    /// `check --db --format json`: exit code and report.
    pub fn check_db(&self) -> (i32, serde_json::Value) {
        let out = super::check()
            .arg("--env-file")
            .arg(&self.path)
            .args(["--db", "--sslmode", "disable", "--format", "json"])
            .output()
            .expect("runs");
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr));
        });
        (out.status.code().expect("exit code"), report)
    }
}

/// `(severity, code, key)` of every finding in a JSON report.
pub fn findings(report: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or_default().to_owned(),
                f["code"].as_str().unwrap_or_default().to_owned(),
                f["key"].as_str().map(str::to_owned),
            )
        })
        .collect()
}
