//! `rotate-keys` through the binary (SPEC §7): a whole rotation with tokens verified by `p256`
//! directly (the tool signs through jsonwebtoken), Auth's one-signing-key rule after every phase,
//! refusals that leave `.env` byte-identical, crashes that leave it old or new, the typed
//! confirmation in a pty, `check` in every state, and `check --db` on `app.settings.jwt_secret`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{json, Value};

use crate::common::pg::{Cluster, ClusterOptions};
use crate::common::{bin, bin_path, pty_exit_code, spawn_in_pty, tempdir};

/// A stack directory with a complete asymmetric `.env` (mode 0600).
struct Stack {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Stack {
    fn new() -> Stack {
        let dir = tempdir();
        let path = dir.path().join(".env");
        let out = bin().args(["generate-keys", "--asymmetric", "--output"]).arg(&path).output().expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        Stack { _dir: dir, path }
    }

    /// A stack without the asymmetric set.
    fn symmetric() -> Stack {
        let dir = tempdir();
        let path = dir.path().join(".env");
        let out = bin().args(["generate-keys", "--output"]).arg(&path).output().expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        Stack { _dir: dir, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        bin().arg("rotate-keys").args(args).arg("--env-file").arg(&self.path).output().expect("runs")
    }

    /// Runs a phase that must succeed.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "rotate-keys {args:?}: {}", text(&out.stderr));
        out
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read .env")
    }

    fn value(&self, key: &str) -> String {
        // Read as compose reads it (dotenvy strips the quotes inside bare JSON such as JWT_KEYS).
        pmoves_secrets::envfile::EnvFile::read(&self.path)
            .expect("parses")
            .get(key)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{key} not in .env"))
    }

    fn json(&self, key: &str) -> Value {
        serde_json::from_str(&self.value(key)).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
    }

    /// Moves the recorded time of `kid` back by `secs`, as if the phase had run that long ago.
    fn age(&self, kid: &str, secs: u64) {
        let mut state = self.json("JWT_KEYS_STATE");
        let since = state[kid]["since"].as_u64().expect("recorded");
        state[kid]["since"] = json!(since - secs);
        let text = std::fs::read_to_string(&self.path).expect("read");
        let lines: Vec<String> = text
            .lines()
            .map(|l| if l.starts_with("JWT_KEYS_STATE=") { format!("JWT_KEYS_STATE='{state}'") } else { l.to_owned() })
            .collect();
        std::fs::write(&self.path, lines.join("\n") + "\n").expect("write");
    }

    /// The kids of `JWT_KEYS` whose key_ops contain "sign".
    fn signers(&self) -> Vec<String> {
        self.json("JWT_KEYS")
            .as_array()
            .expect("array")
            .iter()
            .filter(|k| k["key_ops"].as_array().is_some_and(|ops| ops.iter().any(|o| o == "sign")))
            .map(|k| k["kid"].as_str().unwrap_or("(oct)").to_owned())
            .collect()
    }

    /// A user session as Auth would sign it now: with the key of `JWT_KEYS` that has "sign".
    fn session_token(&self) -> String {
        let keys = self.json("JWT_KEYS");
        let signer = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_ops"].as_array().is_some_and(|ops| ops.iter().any(|o| o == "sign")))
            .expect("a signing key");
        let d = URL_SAFE_NO_PAD.decode(signer["d"].as_str().expect("d")).expect("base64url");
        let key = SigningKey::from_slice(&d).expect("P-256 scalar");
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": signer["kid"]});
        let claims = json!({"role": "authenticated", "sub": "user-1", "exp": now() + 3600});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature: Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Whether `token` verifies against the current `JWT_JWKS` (p256 directly, by kid).
    fn verifies(&self, token: &str) -> bool {
        verifies_with(token, &self.json("JWT_JWKS"))
    }

    fn check(&self) -> Output {
        bin().arg("check").arg("--env-file").arg(&self.path).args(["--format", "json"]).output().expect("runs")
    }

    /// `check` passes: exit 0 and no finding at all.
    fn assert_check_passes(&self, when: &str) {
        let out = self.check();
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(out.status.code(), Some(0), "check after {when}: {report:#}");
        assert_eq!(report["findings"], json!([]), "check after {when}: {report:#}");
    }

    /// The invariants of every state: one signer, the oct key in both sets, no private part in
    /// `JWT_JWKS`, every EC key of `JWT_KEYS` present in `JWT_JWKS`.
    fn assert_invariants(&self, when: &str) {
        assert_eq!(self.signers().len(), 1, "exactly one signing key after {when}");
        let keys = self.json("JWT_KEYS");
        let jwks = self.json("JWT_JWKS");
        let jwks = jwks["keys"].as_array().expect("keys");
        let keys = keys.as_array().expect("array");
        for set in [keys, jwks] {
            let oct: Vec<&Value> = set.iter().filter(|k| k["kty"] == "oct").collect();
            assert_eq!(oct.len(), 1, "the oct key stays after {when}");
            assert_eq!(
                URL_SAFE_NO_PAD.decode(oct[0]["k"].as_str().unwrap()).unwrap(),
                self.value("JWT_SECRET").as_bytes()
            );
        }
        assert!(jwks.iter().all(|k| k.get("d").is_none()), "no private part in JWT_JWKS after {when}");
        for key in keys.iter().filter(|k| k["kty"] == "EC") {
            assert!(
                jwks.iter().any(|p| p["kid"] == key["kid"] && p["x"] == key["x"] && p["y"] == key["y"]),
                "{} of JWT_KEYS is in JWT_JWKS after {when}",
                key["kid"]
            );
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).expect("base64url")
}

fn header_kid(token: &str) -> String {
    let header: Value = serde_json::from_slice(&b64(token.split('.').next().unwrap())).unwrap();
    header["kid"].as_str().expect("kid").to_owned()
}

/// ES256 verification with `p256` alone: the EC key of `jwks` with the token's kid.
fn verifies_with(token: &str, jwks: &Value) -> bool {
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let Ok(signature) = Signature::from_slice(&b64(signature)) else { return false };
    let kid = header_kid(token);
    jwks["keys"].as_array().unwrap().iter().filter(|k| k["kty"] == "EC" && k["kid"] == kid.as_str()).any(|k| {
        let coordinate = |name: &str| -> Option<p256::FieldBytes> {
            let bytes: [u8; 32] = b64(k[name].as_str()?).try_into().ok()?;
            Some(p256::FieldBytes::from(bytes))
        };
        let (Some(x), Some(y)) = (coordinate("x"), coordinate("y")) else { return false };
        let point = p256::EncodedPoint::from_affine_coordinates(&x, &y, false);
        VerifyingKey::from_encoded_point(&point).is_ok_and(|vk| vk.verify(input.as_bytes(), &signature).is_ok())
    })
}

#[test]
fn a_whole_rotation_keeps_old_sessions_valid_until_revoke_and_not_after() {
    let stack = Stack::new();
    stack.assert_invariants("generate-keys");
    let old_kid = stack.signers().remove(0);
    let old_session = stack.session_token();
    let old_anon = stack.value("ANON_KEY_ASYMMETRIC");
    assert!(stack.verifies(&old_session) && stack.verifies(&old_anon));

    // stage: a second key, verify only; the old one still signs.
    stack.ok(&["stage", "--yes"]);
    stack.assert_invariants("stage");
    assert_eq!(stack.signers(), std::slice::from_ref(&old_kid));
    let staged: Vec<String> = stack.json("JWT_KEYS_STATE").as_object().unwrap().keys().cloned().collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let new_kid = staged[0].clone();
    let staged_session = stack.session_token();
    for token in [&old_session, &old_anon, &staged_session] {
        assert!(stack.verifies(token), "after stage");
    }
    stack.assert_check_passes("stage");

    // promote, 20 minutes after stage (without --force).
    stack.age(&new_kid, 20 * 60);
    stack.ok(&["promote", "--yes"]);
    stack.assert_invariants("promote");
    assert_eq!(stack.signers(), std::slice::from_ref(&new_kid));
    let old_in_keys: Vec<Value> =
        stack.json("JWT_KEYS").as_array().unwrap().iter().filter(|k| k["kid"] == old_kid.as_str()).cloned().collect();
    assert_eq!(old_in_keys.len(), 1);
    assert!(old_in_keys[0].get("d").is_none(), "the previous key keeps no private part");
    assert_eq!(old_in_keys[0]["key_ops"], json!(["verify"]));
    let new_session = stack.session_token();
    let new_anon = stack.value("ANON_KEY_ASYMMETRIC");
    let new_service = stack.value("SERVICE_ROLE_KEY_ASYMMETRIC");
    assert_eq!(header_kid(&new_anon), new_kid);
    assert_eq!(header_kid(&new_service), new_kid);
    assert_eq!(header_kid(&new_session), new_kid);
    for token in [&old_session, &old_anon, &staged_session, &new_session, &new_anon, &new_service] {
        assert!(stack.verifies(token), "after promote");
    }
    stack.assert_check_passes("promote");

    // revoke, JWT_EXPIRY + 15 minutes after promote.
    stack.age(&old_kid, 3600 + 15 * 60);
    stack.ok(&["revoke", "--yes"]);
    stack.assert_invariants("revoke");
    assert_eq!(stack.signers(), std::slice::from_ref(&new_kid));
    for token in [&old_session, &old_anon, &staged_session] {
        assert!(!stack.verifies(token), "the revoked key's tokens no longer verify");
    }
    for token in [&new_session, &new_anon, &new_service] {
        assert!(stack.verifies(token), "after revoke");
    }
    assert!(!text(&stack.bytes()).contains(&old_kid), "the revoked key is gone from the file");
    stack.assert_check_passes("revoke");

    // And the next rotation can start.
    stack.ok(&["stage", "--yes"]);
    stack.assert_invariants("second stage");
}

#[test]
fn refusals_leave_the_file_byte_identical() {
    let stack = Stack::new();
    let refuse = |args: &[&str], says: &str| {
        let before = stack.bytes();
        let out = stack.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("nothing was changed"), "{}", text(&out.stderr));
        assert_eq!(stack.bytes(), before, "{args:?} changed the file");
    };
    refuse(&["promote", "--yes"], "no key on standby");
    refuse(&["revoke", "--yes"], "no previous key");
    stack.ok(&["stage", "--yes"]);
    refuse(&["stage", "--yes"], "already has key");
    refuse(&["promote", "--yes"], "was staged only");
    refuse(&["revoke", "--yes"], "no previous key");
    stack.ok(&["promote", "--yes", "--force"]);
    refuse(&["revoke", "--yes"], "stay valid until");
    // Without a recorded time the waits cannot be checked: refused unless --force.
    let text_now = std::fs::read_to_string(&stack.path).unwrap();
    let no_state: String =
        text_now.lines().filter(|l| !l.starts_with("JWT_KEYS_STATE=")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&stack.path, no_state).unwrap();
    refuse(&["revoke", "--yes"], "no recorded promotion time");
    stack.ok(&["revoke", "--yes", "--force"]);
    stack.assert_invariants("forced revoke");
}

#[test]
fn no_terminal_without_yes_is_exit_3_and_changes_nothing() {
    let stack = Stack::new();
    let before = stack.bytes();
    for phase in ["stage", "opaque"] {
        let out = stack.run(&[phase]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
        assert_eq!(stack.bytes(), before);
    }
}

#[test]
fn a_stack_without_the_asymmetric_set_is_pointed_at_generate_keys() {
    let stack = Stack::symmetric();
    let before = stack.bytes();
    for phase in ["stage", "promote", "revoke", "status"] {
        let out = stack.run(&[phase, "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{phase}: {}", text(&out.stderr));
        let message = text(&out.stderr);
        assert!(message.contains("generate-keys --env-file") && message.contains("--asymmetric"), "{message}");
        assert_eq!(stack.bytes(), before);
    }
}

#[test]
fn options_that_do_not_apply_to_a_phase_are_usage_errors() {
    let stack = Stack::new();
    let before = stack.bytes();
    for args in
        [&["stage", "--force", "--yes"][..], &["opaque", "--force", "--yes"], &["stage", "--format", "json", "--yes"]]
    {
        let out = stack.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert_eq!(stack.bytes(), before);
    }
    let out = stack.run(&["rotate", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "an unknown phase: {}", text(&out.stderr));
}

#[test]
fn a_missing_env_file_is_refused_without_creating_anything_beside_it() {
    let dir = tempdir();
    let path = dir.path().join("typo.env");
    for phase in ["stage", "promote", "revoke", "opaque"] {
        let out = bin().args(["rotate-keys", phase, "--yes", "--env-file"]).arg(&path).output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{phase}: {}", text(&out.stderr));
        let message = text(&out.stderr);
        assert!(message.contains("typo.env") && message.contains("does not exist"), "{message}");
        // A fresh .env would hold secrets the running stack does not have: never suggested.
        assert!(message.contains("--env-file") && !message.contains("generate-keys"), "{message}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no .env, lock or pending file was created: {left:?}");
}

#[test]
fn a_pending_password_rotation_blocks_every_phase() {
    let stack = Stack::new();
    let pending = stack.path.with_file_name(".env.pending");
    std::fs::write(&pending, "POSTGRES_PASSWORD=x\n").unwrap();
    let before = stack.bytes();
    let out = stack.run(&["stage", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("rotate-passwords"), "{}", text(&out.stderr));
    assert_eq!(stack.bytes(), before);
}

#[test]
fn each_phase_keeps_mode_and_every_other_byte() {
    let stack = Stack::new();
    std::fs::set_permissions(&stack.path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = text(&stack.bytes());
    stack.ok(&["stage", "--yes"]);
    let after = text(&stack.bytes());
    assert_eq!(std::fs::metadata(&stack.path).unwrap().mode() & 0o777, 0o640);
    let changed = ["JWT_KEYS=", "JWT_JWKS=", "JWT_KEYS_STATE="];
    let keep = |t: &str| -> Vec<String> {
        t.lines().filter(|l| !changed.iter().any(|c| l.starts_with(c))).map(str::to_owned).collect()
    };
    assert_eq!(keep(&after), keep(&before));
    assert!(after.ends_with("JWT_KEYS_STATE='") || after.contains("\nJWT_KEYS_STATE="), "appended at the end");
}

#[test]
fn a_killed_phase_leaves_the_old_file_or_the_new_one() {
    // SIGKILL at delays spread over the whole run (0 to 3x its measured length): whatever the
    // moment, .env is either the original bytes or a complete staged set, never a mix (the write
    // is a rename of a fsync'd temporary file).
    let stack = Stack::new();
    let original = stack.bytes();
    let spawn = || {
        std::process::Command::new(bin_path())
            .env_clear()
            .args(["rotate-keys", "stage", "--yes", "--env-file"])
            .arg(&stack.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let started = std::time::Instant::now();
    assert!(spawn().wait().expect("wait").success());
    let full_run = started.elapsed();
    let (mut old, mut new) = (0, 0);
    let steps = 30u32;
    for step in 0..=steps {
        std::fs::write(&stack.path, &original).unwrap();
        let mut child = spawn();
        std::thread::sleep(full_run * 3 * step / steps);
        let _ = child.kill();
        let _ = child.wait();
        if stack.bytes() == original {
            old += 1;
        } else {
            new += 1;
            stack.assert_invariants("a killed stage that completed");
            assert_eq!(stack.json("JWT_KEYS_STATE").as_object().unwrap().len(), 1);
        }
    }
    // Which outcome each kill produced depends on the machine's timing, so only the invariant
    // above is asserted; the counts are for the record. Both outcomes are checked by the
    // invariant whenever they occur, and the delays span from before the start to past the end.
    eprintln!("killed stage runs (full run {full_run:?}): {old} left the old file, {new} the new one");
}

#[test]
fn the_write_replaces_the_file_in_one_rename() {
    // A reader holding the old file keeps reading it whole: the new file is another inode.
    let stack = Stack::new();
    let before = stack.bytes();
    let old_inode = std::fs::metadata(&stack.path).unwrap().ino();
    let held = std::fs::File::open(&stack.path).unwrap();
    stack.ok(&["stage", "--yes"]);
    assert_ne!(std::fs::metadata(&stack.path).unwrap().ino(), old_inode);
    let mut still = Vec::new();
    std::io::Read::read_to_end(&mut &held, &mut still).unwrap();
    assert_eq!(still, before);
}

#[test]
fn status_reports_states_and_the_next_step_in_text_and_json() {
    let stack = Stack::new();
    let out = stack.ok(&["status"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("current") && shown.contains("next: stage: now"), "{shown}");
    stack.ok(&["stage", "--yes"]);
    let out = stack.ok(&["status", "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let states: Vec<&str> = report["keys"].as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["current", "standby"]);
    assert_eq!(report["next"][0]["step"], "promote");
    assert_eq!(report["next"][0]["ready"], false);
    assert_eq!(report["legacy_hs256"], true);
    let earliest = report["next"][0]["earliest"].as_u64().unwrap();
    assert!(earliest >= now() + 19 * 60 && earliest <= now() + 20 * 60, "{report:#}");
    // No value ever reaches the output.
    for key in ["JWT_SECRET", "ANON_KEY_ASYMMETRIC"] {
        assert!(!text(&out.stdout).contains(&stack.value(key)));
    }
}

#[test]
fn opaque_re_mints_the_pair_in_upstreams_format_and_names_who_needs_it() {
    use sha2::Digest as _;
    let stack = Stack::new();
    let before = (stack.value("SUPABASE_PUBLISHABLE_KEY"), stack.value("SUPABASE_SECRET_KEY"));
    let out = stack.ok(&["opaque", "--yes"]);
    let message = text(&out.stderr);
    for who in ["studio", "api-gw", "functions", "browser and mobile apps", "servers and jobs"] {
        assert!(message.contains(who), "{who} not named: {message}");
    }
    for (key, prefix, old) in
        [("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_", &before.0), ("SUPABASE_SECRET_KEY", "sb_secret_", &before.1)]
    {
        let value = stack.value(key);
        assert_ne!(&value, old, "{key} is new");
        assert!(!message.contains(&value) && !message.contains(old.as_str()), "no value in the output");
        let (body, checksum) = value.split_at(value.len() - 9);
        assert!(body.starts_with(prefix) && body.len() == prefix.len() + 22, "{key}");
        assert_eq!(&checksum[..1], "_");
        let digest = sha2::Sha256::digest(format!("supabase-self-hosted|{body}"));
        assert_eq!(&checksum[1..], &URL_SAFE_NO_PAD.encode(digest)[..8]);
    }
    stack.assert_check_passes("opaque");
}

// -------------------------------------------------------------------------- typed confirmation

/// Runs `rotate-keys stage` in a pty, answers `answer` + Enter, returns the exit code.
fn stage_in_pty(stack: &Stack, answer: &str) -> i32 {
    let mut session = spawn_in_pty(&["rotate-keys", "stage"], &stack.path);
    session.exp_string("standby (verify only)").expect("the plan is shown");
    session.exp_string("type yes").expect("the question is asked");
    session.send_line(answer).expect("answer");
    session.exp_eof().expect("exits");
    pty_exit_code(&mut session)
}

#[test]
fn y_alone_does_not_proceed_and_a_typed_yes_does() {
    let stack = Stack::new();
    let before = stack.bytes();
    assert_eq!(stage_in_pty(&stack, "y"), 3);
    assert_eq!(stack.bytes(), before, "y changed the file");
    assert_eq!(stage_in_pty(&stack, "yes"), 0);
    assert_ne!(stack.bytes(), before);
    stack.assert_invariants("stage in a pty");
}

// ----------------------------------------------------------------------- check --db, jwt_secret

/// A stack `.env` pointing at `pg`.
fn stack_on(pg: &Cluster) -> Stack {
    let stack = Stack::new();
    let text = std::fs::read_to_string(&stack.path).unwrap();
    let set = [
        ("POSTGRES_HOST", pg.host().to_owned()),
        ("POSTGRES_PORT", pg.port().to_string()),
        ("POSTGRES_DB", pg.main_db().to_owned()),
        ("POSTGRES_PASSWORD", pg.password().to_owned()),
    ];
    let lines: Vec<String> = text
        .lines()
        .map(|l| match set.iter().find(|(k, _)| l.starts_with(&format!("{k}="))) {
            Some((k, v)) => format!("{k}='{v}'"),
            None => l.to_owned(),
        })
        .collect();
    std::fs::write(&stack.path, lines.join("\n") + "\n").unwrap();
    stack
}

fn db_report(stack: &Stack) -> (i32, Value) {
    let out = bin()
        .arg("check")
        .arg("--env-file")
        .arg(&stack.path)
        .args(["--db", "--sslmode", "disable", "--format", "json"])
        .output()
        .expect("runs");
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).expect("json"))
}

fn copy_findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "db-jwt-secret-copy")
        .map(|f| (f["severity"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn check_db_reports_a_stale_and_a_matching_copy_of_the_jwt_secret() {
    if crate::common::skip_on_external_database("changes database settings the external harness cannot restore") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let stack = stack_on(&pg);
    let (code, report) = db_report(&stack);
    assert_eq!((code, copy_findings(&report)), (0, vec![]), "{report:#}");

    let db = pg.main_db().to_owned();
    pg.psql(&format!("ALTER DATABASE \"{db}\" SET \"app.settings.jwt_secret\" TO 'a-stale-secret-from-first-start';"));
    let (code, report) = db_report(&stack);
    let found = copy_findings(&report);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0].0, "error");
    assert!(
        found[0].1.contains(&format!("ALTER DATABASE \"{db}\" RESET \"app.settings.jwt_secret\"")),
        "{}",
        found[0].1
    );
    assert!(!found[0].1.contains("a-stale-secret"), "{}", found[0].1);

    let secret = stack.value("JWT_SECRET");
    pg.psql(&format!("ALTER DATABASE \"{db}\" SET \"app.settings.jwt_secret\" TO '{secret}';"));
    let (code, report) = db_report(&stack);
    let found = copy_findings(&report);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "warning");
    assert!(!found[0].1.contains(&secret));

    // The hint works: after it, nothing is reported.
    pg.psql(&format!("ALTER DATABASE \"{db}\" RESET \"app.settings.jwt_secret\";"));
    let (code, report) = db_report(&stack);
    assert_eq!((code, copy_findings(&report)), (0, vec![]), "{report:#}");
}

#[test]
fn check_db_reports_a_copy_set_for_a_role() {
    if crate::common::skip_on_external_database("changes role settings the external harness cannot restore") {
        return;
    }
    let pg = Cluster::start(ClusterOptions::default());
    let stack = stack_on(&pg);
    pg.psql("ALTER ROLE authenticator SET \"app.settings.jwt_secret\" TO 'another-stale-secret';");
    let (code, report) = db_report(&stack);
    let found = copy_findings(&report);
    assert_eq!(code, 1, "{report:#}");
    assert!(found[0].1.contains("ALTER ROLE \"authenticator\" RESET"), "{}", found[0].1);
}
