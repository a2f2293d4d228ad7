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
use crate::common::{bin, bin_path, check, pty_exit_code, spawn_in_pty, tempdir};

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

    /// The one kid `JWT_KEYS_STATE` records in `state`.
    fn kid_in_state(&self, state: &str) -> String {
        let record = self.json("JWT_KEYS_STATE");
        let kids: Vec<&String> =
            record.as_object().unwrap().iter().filter(|(_, r)| r["state"] == state).map(|(k, _)| k).collect();
        assert_eq!(kids.len(), 1, "one {state} key: {record}");
        kids[0].clone()
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
        check().arg("--env-file").arg(&self.path).args(["--format", "json"]).output().expect("runs")
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
    let new_kid = stack.kid_in_state("standby");
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
    assert!(old_in_keys[0].get("d").is_some(), "the previous key keeps its private part until revoke");
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
    for args in
        [&["stage", "--yes"][..], &["promote", "--yes"], &["revoke", "--yes"], &["rollback", "--yes"], &["status"]]
    {
        let phase = args[0];
        let out = stack.run(args);
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
            assert_eq!(stack.json("JWT_KEYS_STATE").as_object().unwrap().len(), 2, "current and standby recorded");
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
    let out = check()
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

// ------------------------------------ the ring's states, phases that refuse, verification by clients

impl Stack {
    /// Sets `key` to `value` as a hand edit would (every other line kept).
    fn set(&self, key: &str, value: &str) {
        let mut file = pmoves_secrets::envfile::EnvFile::read(&self.path).expect("parses");
        file.set(key, value).expect("set");
        std::fs::write(&self.path, file.render().as_bytes()).expect("write");
    }

    /// `JWT_KEYS` as a list of JWKs.
    fn keys(&self) -> Vec<Value> {
        self.json("JWT_KEYS").as_array().expect("array").clone()
    }

    /// A stack in the middle of a rotation: current, standby (promoted once before, so also a
    /// previous key): returns (previous, current, standby) kids.
    fn mid_rotation() -> (Stack, [String; 3]) {
        let stack = Stack::new();
        let first = stack.signers().remove(0);
        stack.ok(&["stage", "--yes"]);
        let second = stack.kid_in_state("standby");
        stack.ok(&["promote", "--yes", "--force"]);
        stack.ok(&["stage", "--yes"]);
        let third = stack.kid_in_state("standby");
        (stack, [first, second, third])
    }

    /// Every EC kid of a set, in order.
    fn ec_kids(&self, key: &str) -> Vec<String> {
        let set = self.json(key);
        let list = set.as_array().or_else(|| set["keys"].as_array()).expect("keys").clone();
        list.iter().filter(|k| k["kty"] == "EC").map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    }
}

fn generate_env(stack: &Stack, args: &[&str]) -> Output {
    bin().arg("generate-keys").args(args).arg("--env-file").arg(&stack.path).output().expect("runs")
}

#[test]
fn a_new_jwt_secret_mid_rotation_changes_only_the_oct_key() {
    let (stack, kids) = Stack::mid_rotation();
    let before_keys: Vec<Value> = stack.keys().into_iter().filter(|k| k["kty"] == "EC").collect();
    let state = stack.value("JWT_KEYS_STATE");
    let anon = stack.value("ANON_KEY_ASYMMETRIC");
    let out = generate_env(&stack, &["--yes", "--only", "JWT_SECRET"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after_keys: Vec<Value> = stack.keys().into_iter().filter(|k| k["kty"] == "EC").collect();
    assert_eq!(after_keys, before_keys, "every EC key of the ring stays, private parts included");
    assert_eq!(stack.ec_kids("JWT_JWKS"), kids.to_vec(), "JWT_JWKS keeps previous, current and standby");
    assert_eq!(stack.value("JWT_KEYS_STATE"), state);
    assert_eq!(stack.value("ANON_KEY_ASYMMETRIC"), anon, "the ES256 keys are not signed by JWT_SECRET");
    stack.assert_invariants("a new JWT_SECRET");
    stack.assert_check_passes("a new JWT_SECRET");
    // And the rotation goes on.
    stack.ok(&["promote", "--yes", "--force"]);
    stack.assert_invariants("promote after a new JWT_SECRET");
}

#[test]
fn a_weak_jwt_secret_filled_mid_rotation_keeps_the_ring() {
    let (stack, kids) = Stack::mid_rotation();
    stack.set("JWT_SECRET", "changeme");
    let out = generate_env(&stack, &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_ne!(stack.value("JWT_SECRET"), "changeme");
    assert_eq!(stack.ec_kids("JWT_KEYS"), kids.to_vec());
    assert_eq!(stack.ec_kids("JWT_JWKS"), kids.to_vec());
    stack.assert_invariants("a weak JWT_SECRET replaced");
}

#[test]
fn only_jwt_jwks_is_rebuilt_from_every_key_of_jwt_keys() {
    let (stack, kids) = Stack::mid_rotation();
    // A JWT_JWKS that lost the previous and standby keys (as the old tool wrote it).
    let jwks = stack.json("JWT_JWKS");
    let kept: Vec<Value> =
        jwks["keys"].as_array().unwrap().iter().filter(|k| k["kid"] != kids[0].as_str()).cloned().collect();
    stack.set("JWT_JWKS", &json!({ "keys": kept }).to_string());
    let out = generate_env(&stack, &["--yes", "--only", "JWT_JWKS"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stack.ec_kids("JWT_JWKS"), kids.to_vec());
    stack.assert_invariants("--only JWT_JWKS");
}

#[test]
fn a_new_ec_ring_is_refused_while_a_key_is_staged_or_previous() {
    let (stack, _) = Stack::mid_rotation();
    let before = stack.bytes();
    let out = generate_env(&stack, &["--yes", "--only", "JWT_KEYS"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let message = text(&out.stderr);
    assert!(message.contains("standby") && message.contains("nothing was changed"), "{message}");
    assert_eq!(stack.bytes(), before);
    // With only a signer left, a new ring is the operator's call.
    let fresh = Stack::new();
    let out = generate_env(&fresh, &["--yes", "--only", "JWT_KEYS"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    fresh.assert_invariants("a new ring");
}

/// Runs every changing phase on the current file; each must be refused with `says`, the file
/// byte-identical.
fn every_phase_refuses(stack: &Stack, says: &str) {
    let before = stack.bytes();
    for args in [
        &["stage", "--yes"][..],
        &["promote", "--yes", "--force"],
        &["revoke", "--yes", "--force"],
        &["rollback", "--yes"],
    ] {
        let out = stack.run(args);
        let message = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {message}");
        assert!(message.contains(says) && message.contains("nothing was changed"), "{args:?}: {message}");
        assert_eq!(stack.bytes(), before, "{args:?} changed the file");
    }
}

/// `check`'s finding codes for the current file.
fn check_codes(stack: &Stack) -> Vec<String> {
    let report: Value = serde_json::from_slice(&stack.check().stdout).expect("json");
    report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_ring_with_a_duplicate_kid_is_refused_by_every_phase() {
    let (stack, [previous, current, _]) = Stack::mid_rotation();
    // The previous key renamed to the current key's kid, in both sets.
    let rename = |key: &str| {
        let text = stack.value(key).replace(&previous, &current);
        stack.set(key, &text);
    };
    rename("JWT_KEYS");
    rename("JWT_JWKS");
    every_phase_refuses(&stack, "more than one key with kid");
    assert!(check_codes(&stack).contains(&"duplicate-kid".to_owned()), "{:?}", check_codes(&stack));
}

#[test]
fn a_ring_with_two_signers_is_refused() {
    let (stack, [_, _, standby]) = Stack::mid_rotation();
    let keys: Vec<Value> = stack
        .keys()
        .into_iter()
        .map(|mut k| {
            if k["kid"] == standby.as_str() {
                k["key_ops"] = json!(["sign", "verify"]);
            }
            k
        })
        .collect();
    stack.set("JWT_KEYS", &Value::Array(keys).to_string());
    every_phase_refuses(&stack, "exactly one");
    assert!(check_codes(&stack).contains(&"signing-key-count".to_owned()));
}

#[test]
fn a_ring_that_signs_with_rs256_is_refused() {
    let stack = Stack::new();
    stack.ok(&["stage", "--yes"]);
    let signer = stack.signers().remove(0);
    let keys: Vec<Value> = stack
        .keys()
        .into_iter()
        .map(|mut k| {
            if k["kid"] == signer.as_str() {
                k["alg"] = json!("RS256");
            }
            k
        })
        .collect();
    stack.set("JWT_KEYS", &Value::Array(keys).to_string());
    every_phase_refuses(&stack, "EC P-256");
    assert!(check_codes(&stack).contains(&"signing-key-not-es256".to_owned()));
}

#[test]
fn a_standby_whose_private_part_is_not_its_public_one_is_refused() {
    let other = SigningKey::random(&mut rand_core_os());
    for (what, edit, code) in [
        ("another d", "d", "asymmetric-mismatch"),
        ("a wrong curve", "crv", "key-set-invalid"),
        ("a point off the curve", "y", "key-set-invalid"),
    ] {
        let stack = Stack::new();
        stack.ok(&["stage", "--yes"]);
        let standby = stack.kid_in_state("standby");
        let keys: Vec<Value> = stack
            .keys()
            .into_iter()
            .map(|mut k| {
                if k["kid"] == standby.as_str() {
                    match edit {
                        "d" => k["d"] = json!(URL_SAFE_NO_PAD.encode(other.to_bytes())),
                        "crv" => k["crv"] = json!("P-384"),
                        _ => k["y"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32])),
                    }
                }
                k
            })
            .collect();
        stack.set("JWT_KEYS", &Value::Array(keys).to_string());
        let before = stack.bytes();
        let out = stack.run(&["promote", "--yes", "--force"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&standby), "{what}: {}", text(&out.stderr));
        assert_eq!(stack.bytes(), before, "{what}");
        assert!(check_codes(&stack).contains(&code.to_owned()), "{what}: {:?}", check_codes(&stack));
    }
}

/// The OS random generator for test keys.
fn rand_core_os() -> p256::elliptic_curve::rand_core::OsRng {
    p256::elliptic_curve::rand_core::OsRng
}

#[test]
fn a_private_part_in_jwt_jwks_is_refused() {
    let stack = Stack::new();
    let keys = stack.keys();
    stack.set("JWT_JWKS", &json!({ "keys": keys }).to_string());
    every_phase_refuses(&stack, "private key part");
    assert!(check_codes(&stack).contains(&"jwks-private-part".to_owned()));
}

/// The services a phase says to recreate (its "then recreate:" line).
fn restart_list(out: &Output) -> Vec<String> {
    let message = text(&out.stderr);
    let line = message.lines().find(|l| l.contains("then recreate:")).unwrap_or_else(|| panic!("{message}"));
    line.split("then recreate:").nth(1).unwrap().split_whitespace().map(str::to_owned).collect()
}

#[test]
fn each_phase_lists_exactly_the_services_whose_input_changed() {
    let stack = Stack::new();
    let verifiers = ["auth", "functions", "realtime", "rest", "storage"];
    assert_eq!(restart_list(&stack.ok(&["stage", "--yes"])), verifiers);
    // promote leaves JWT_JWKS alone: Auth and the gateway only (no Realtime websocket dropped).
    assert_eq!(restart_list(&stack.ok(&["promote", "--yes", "--force"])), ["auth", "api-gw"]);
    assert_eq!(restart_list(&stack.ok(&["rollback", "--yes"])), ["auth", "api-gw"]);
    stack.ok(&["promote", "--yes", "--force"]);
    assert_eq!(restart_list(&stack.ok(&["revoke", "--yes", "--force"])), verifiers);
    assert_eq!(restart_list(&stack.ok(&["opaque", "--yes"])), ["api-gw", "functions", "studio"]);
}

#[test]
fn no_phase_tells_a_client_to_use_an_asymmetric_api_key() {
    // The gateway compares an apikey byte for byte with the asymmetric keys it started with:
    // an old one is rejected at once, so nothing may promise it keeps working, and clients hold
    // the opaque pair (or the legacy HS256 keys).
    let stack = Stack::new();
    let mut said = String::new();
    for args in [
        &["stage", "--yes"][..],
        &["promote", "--yes", "--force"],
        &["rollback", "--yes"],
        &["promote", "--yes", "--force"],
        &["revoke", "--yes", "--force"],
    ] {
        said.push_str(&text(&stack.ok(args).stderr));
    }
    let lower = said.to_lowercase();
    for promise in ["keep working until", "give every client", "clients holding the old"] {
        assert!(!lower.contains(promise), "{promise:?} in: {said}");
    }
    assert!(said.contains("SUPABASE_PUBLISHABLE_KEY") && said.contains("gateway's own"), "{said}");
}

#[test]
fn rollback_after_promote_signs_with_the_previous_key_again_and_is_refused_after_revoke() {
    let stack = Stack::new();
    let old = stack.signers().remove(0);
    let old_session = stack.session_token();
    stack.ok(&["stage", "--yes"]);
    let new = stack.kid_in_state("standby");
    stack.ok(&["promote", "--yes", "--force"]);
    let new_session = stack.session_token();
    stack.ok(&["rollback", "--yes"]);
    stack.assert_invariants("rollback");
    assert_eq!(stack.signers(), std::slice::from_ref(&old), "the previous key signs again");
    assert_eq!(stack.kid_in_state("standby"), new, "the promoted key returns to standby");
    assert_eq!(header_kid(&stack.value("ANON_KEY_ASYMMETRIC")), old);
    let restored_session = stack.session_token();
    assert_eq!(header_kid(&restored_session), old);
    for token in [&old_session, &new_session, &restored_session, &stack.value("SERVICE_ROLE_KEY_ASYMMETRIC")] {
        assert!(stack.verifies(token), "after rollback");
    }
    stack.assert_check_passes("rollback");
    // Promote again, revoke: no way back.
    stack.ok(&["promote", "--yes", "--force"]);
    stack.ok(&["revoke", "--yes", "--force"]);
    let before = stack.bytes();
    let out = stack.run(&["rollback", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("revoke cannot be undone"), "{}", text(&out.stderr));
    assert_eq!(stack.bytes(), before);
    stack.assert_check_passes("revoke after rollback");
}

#[test]
fn generated_keys_record_the_current_key_and_status_shows_seconds_and_utc() {
    let stack = Stack::new();
    let out = stack.ok(&["status", "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(report["keys"][0]["since"].is_u64(), "generate-keys records the current key: {report:#}");
    for step in report["next"].as_array().unwrap() {
        assert_eq!(step["earliest"].is_null(), step["earliest_utc"].is_null(), "{report:#}");
    }
    stack.ok(&["stage", "--yes"]);
    let shown = text(&stack.ok(&["status"]).stdout);
    assert!(!shown.contains("unrecorded") && !shown.contains("(1 min ago)"), "{shown}");
    assert!(shown.contains(" s ago)"), "{shown}");
}

// ---------------------------------------------------------------------------------------- compose

/// Upstream's stock compose file, or `None` (said on stderr) outside the shared layout.
fn stock_compose() -> Option<PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/docker-compose.yml");
    if path.is_file() {
        Some(path)
    } else {
        crate::common::skipped("upstream's docker-compose.yml is not in ../shared/upstream");
        None
    }
}

/// The stock compose file with every commented-out key-set line enabled, beside the stack.
fn enabled_compose(stack: &Stack, stock: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(stock).unwrap();
    let enabled: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            // `#GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}`, not the prose comments around it.
            match t.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with(|c: char| c.is_ascii_uppercase())
                        && (rest.contains("${JWT_KEYS") || rest.contains("${JWT_JWKS")) =>
                {
                    format!("{indent}{rest}")
                }
                _ => l.to_owned(),
            }
        })
        .map(|l| l + "\n")
        .collect();
    let path = stack.path.with_file_name("docker-compose.yml");
    std::fs::write(&path, enabled).unwrap();
    path
}

/// The 1-based line of `needle` in `file`.
fn line_of(file: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(file).unwrap().lines().position(|l| l.contains(needle)).expect("the line") + 1
}

#[test]
fn check_compose_names_the_commented_out_key_set_lines_of_upstreams_file() {
    let Some(stock) = stock_compose() else { return };
    let stack = Stack::new();
    let report = |compose: &std::path::Path| -> Value {
        let out = check()
            .arg("--env-file")
            .arg(&stack.path)
            .arg("--compose")
            .arg(compose)
            .args(["--format", "json"])
            .output()
            .expect("runs");
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let found = report(&stock);
    let wiring: Vec<(String, String, u64)> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "compose-key-set-unwired")
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let auth = wiring.iter().find(|(k, ..)| k == "JWT_KEYS").unwrap_or_else(|| panic!("{found:#}"));
    assert_eq!(auth.2 as usize, line_of(&stock, "#GOTRUE_JWT_KEYS: ${JWT_KEYS"), "{auth:?}");
    assert!(auth.1.contains("auth") && auth.1.contains("GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}"), "{auth:?}");
    let verifiers: Vec<u64> = wiring.iter().filter(|(k, ..)| k == "JWT_JWKS").map(|w| w.2).collect();
    assert_eq!(verifiers.len(), 3, "realtime, storage, functions: {wiring:?}");
    for f in found["findings"].as_array().unwrap() {
        assert!(
            !(f["code"] == "unused-env-key" && matches!(f["key"].as_str(), Some("JWT_KEYS" | "JWT_KEYS_STATE"))),
            "{f}"
        );
        assert!(
            f["file"].is_null()
                || f["code"] != "compose-key-set-unwired"
                || f["file"].as_str().unwrap().ends_with("docker-compose.yml")
        );
    }
    let enabled = enabled_compose(&stack, &stock);
    let found = report(&enabled);
    let codes: Vec<&str> = found["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(!codes.contains(&"compose-key-set-unwired"), "{found:#}");
}

#[test]
fn rotate_keys_refuses_a_set_no_signer_reads() {
    let Some(stock) = stock_compose() else { return };
    let stack = Stack::new();
    let before = stack.bytes();
    let compose = stock.to_str().unwrap();
    let out = stack.run(&["stage", "--yes", "--compose", compose]);
    let message = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(
        message.contains("no signer") && message.contains("GOTRUE_JWT_KEYS") && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(stack.bytes(), before);
    let enabled = enabled_compose(&stack, &stock);
    stack.ok(&["stage", "--yes", "--compose", enabled.to_str().unwrap()]);
}

/// A fake `docker` in `dir/fakebin` that records each call (arguments and environment) in
/// `dir/docker.log`, defines every service of the stack, and writes the time `up` returned to
/// `dir/up_at`. Returns the `PATH` to use.
fn fake_docker(dir: &std::path::Path) -> (String, PathBuf) {
    let bin_dir = dir.join("fakebin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("docker.log");
    // `up` ends in a later second than it began only while `dir/slow_up` exists (the record's
    // time is in whole seconds, so only then can a time taken before `up` be told apart).
    let script = format!(
        "#!/bin/sh\n\
         {{ printf 'CALL %s\\n' \"$*\"; env | sed 's/^/ENV /'; }} >> '{log}'\n\
         case \"$*\" in\n\
           *'config --services'*) printf 'db\\nauth\\nrest\\nrealtime\\nstorage\\nfunctions\\napi-gw\\nstudio\\n' ;;\n\
           *' up '*) if [ -e '{slow}' ]; then sleep 1; fi; date +%s > '{up}' ;;\n\
         esac\n\
         exit 0\n",
        log = log.display(),
        slow = dir.join("slow_up").display(),
        up = dir.join("up_at").display()
    );
    let docker = bin_dir.join("docker");
    std::fs::write(&docker, script).unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()), log)
}

/// The `up` call of the log: its services (after `--force-recreate` / `--wait`) and environment.
fn up_call(log: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap();
    let start = text.find("CALL compose").and_then(|_| text.rfind("\nCALL ").map(|i| i + 1)).unwrap();
    let block = &text[start..];
    let args = block.lines().next().unwrap();
    assert!(args.contains(" up ") && args.contains("--force-recreate") && args.contains("--wait"), "{args}");
    let services: Vec<String> = args.rsplit("--wait").next().unwrap().split_whitespace().map(str::to_owned).collect();
    let env: Vec<String> = block.lines().skip(1).filter_map(|l| l.strip_prefix("ENV ")).map(str::to_owned).collect();
    (services, env)
}

#[test]
fn restart_recreates_exactly_the_phases_services_and_records_the_time_after_them() {
    let stack = Stack::new();
    let dir = stack.path.parent().unwrap().to_path_buf();
    let (path, log) = fake_docker(&dir);
    let expect = |args: &[&str], services: &[&str]| {
        let out = bin()
            .arg("rotate-keys")
            .args(args)
            .args(["--yes", "--restart", "--env-file"])
            .arg(&stack.path)
            .env("PATH", &path)
            // An operator who exported the .env: compose would let these override --env-file.
            .env("JWT_SECRET", "exported-old-secret")
            .env("JWT_KEYS", "[]")
            .env("PGPASSWORD", "x")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        let (recreated, env) = up_call(&log);
        assert_eq!(recreated, services, "{args:?}");
        for var in ["JWT_SECRET=", "JWT_KEYS=", "PGPASSWORD="] {
            assert!(!env.iter().any(|e| e.starts_with(var)), "{args:?}: {var} reached compose");
        }
        let up_at: u64 = std::fs::read_to_string(dir.join("up_at")).unwrap().trim().parse().unwrap();
        std::fs::remove_file(&log).unwrap();
        up_at
    };
    // One slow `up` is enough to see when the time is taken; the other phases run at full speed.
    std::fs::write(dir.join("slow_up"), b"").unwrap();
    let up = expect(&["stage"], &["auth", "functions", "realtime", "rest", "storage"]);
    std::fs::remove_file(dir.join("slow_up")).unwrap();
    let standby = stack.kid_in_state("standby");
    let record = stack.json("JWT_KEYS_STATE");
    assert!(record[&standby]["since"].as_u64().unwrap() >= up, "the time is taken after the services are up: {record}");
    assert_eq!(record[&standby]["from"], "restart");
    let report: Value = serde_json::from_slice(&stack.ok(&["status", "--format", "json"]).stdout).unwrap();
    let shown = report["keys"].as_array().unwrap().iter().find(|k| k["kid"] == standby.as_str()).cloned().unwrap();
    assert_eq!(shown["since_counts_from"], "restart", "{report:#}");
    expect(&["promote", "--force"], &["auth", "api-gw"]);
    expect(&["rollback"], &["auth", "api-gw"]);
    expect(&["promote", "--force"], &["auth", "api-gw"]);
    expect(&["revoke", "--force"], &["auth", "functions", "realtime", "rest", "storage"]);
    expect(&["opaque"], &["api-gw", "functions", "studio"]);
}

#[test]
fn without_restart_the_record_says_the_time_is_the_files_and_status_reminds() {
    let stack = Stack::new();
    stack.ok(&["stage", "--yes"]);
    let standby = stack.kid_in_state("standby");
    assert_eq!(stack.json("JWT_KEYS_STATE")[&standby]["from"], "file");
    let shown = text(&stack.ok(&["status"]).stdout);
    assert!(shown.contains("as written to the file") && shown.contains("count the waits from the restart"), "{shown}");
    let report: Value = serde_json::from_slice(&stack.ok(&["status", "--format", "json"]).stdout).unwrap();
    let keys = report["keys"].as_array().unwrap();
    assert!(keys.iter().all(|k| k["since_counts_from"] == "file"), "{report:#}");
}

#[test]
fn restart_without_docker_is_refused_before_anything_changes() {
    let stack = Stack::new();
    let before = stack.bytes();
    let out = bin()
        .args(["rotate-keys", "stage", "--yes", "--restart", "--env-file"])
        .arg(&stack.path)
        .env("PATH", "/nonexistent")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("docker") && text(&out.stderr).contains("nothing was changed"));
    assert_eq!(stack.bytes(), before);
}

// ---------------------------------------------- the key sets as clients nobody here wrote read them

/// Verifies `tokens` against `jwks` with PyJWT (the key by the token's `kid`; an HS256 token with
/// the set's `oct` key), as a supabase-js-like client with the set in hand would. Returns, per
/// token name, whether it verified. `None` (said on stderr) without the test virtualenv.
fn pyjwt_verifies(jwks: &Value, tokens: &[(&str, String)]) -> Option<Vec<(String, bool)>> {
    let Some(bin) = std::env::var_os("PMOVES_TEST_COMPOSE_BIN") else {
        crate::common::skipped("PMOVES_TEST_COMPOSE_BIN is not set (./scripts/test sets it): PyJWT not run");
        return None;
    };
    const SCRIPT: &str = r#"
import json, sys, jwt
data = json.load(sys.stdin)
keys = jwt.PyJWKSet.from_dict(data["jwks"])
out = []
for name, token in data["tokens"]:
    header = jwt.get_unverified_header(token)
    try:
        if header["alg"] == "HS256":
            key = next(k for k in keys.keys if k.key_type == "oct")
        else:
            key = keys[header["kid"]]
        jwt.decode(token, key.key, algorithms=[header["alg"]], options={"verify_aud": False})
        out.append([name, True])
    except Exception:
        out.append([name, False])
print(json.dumps(out))
"#;
    let input = json!({ "jwks": jwks, "tokens": tokens });
    let mut child = std::process::Command::new(std::path::Path::new(&bin).join("python"))
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyJWT script failed");
    Some(serde_json::from_slice(&out.stdout).expect("json"))
}

impl Stack {
    /// Auth's rule for this state: exactly one signer, and the kids Auth publishes (every key
    /// of JWT_KEYS but the oct key) are exactly the EC kids of JWT_JWKS.
    fn assert_auths_rule(&self, when: &str) {
        assert_eq!(self.signers().len(), 1, "Auth starts with exactly one signer after {when}");
        let mut published: Vec<String> =
            self.keys().iter().filter(|k| k["kty"] != "oct").map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        let mut verified = self.ec_kids("JWT_JWKS");
        published.sort();
        verified.sort();
        assert_eq!(published, verified, "what Auth publishes is what the verifiers hold after {when}");
    }

    /// What a client holds: the opaque pair and the legacy HS256 keys.
    fn client_keys(&self) -> Vec<String> {
        ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "ANON_KEY", "SERVICE_ROLE_KEY"]
            .iter()
            .map(|k| self.value(k))
            .collect()
    }
}

#[test]
fn every_phase_verifies_with_pyjwt_as_intended() {
    let stack = Stack::new();
    let clients = stack.client_keys();
    let old_session = stack.session_token();
    let old_gateway = stack.value("ANON_KEY_ASYMMETRIC");
    let legacy = stack.value("ANON_KEY");
    let check = |when: &str, expect_old: bool, new_session: Option<&String>| {
        stack.assert_auths_rule(when);
        assert_eq!(stack.client_keys(), clients, "what clients hold never changes ({when})");
        let mut tokens = vec![
            ("old session", old_session.clone()),
            ("old gateway key", old_gateway.clone()),
            ("legacy anon", legacy.clone()),
            ("gateway anon now", stack.value("ANON_KEY_ASYMMETRIC")),
            ("gateway service_role now", stack.value("SERVICE_ROLE_KEY_ASYMMETRIC")),
            ("session now", stack.session_token()),
        ];
        if let Some(token) = new_session {
            tokens.push(("new-key session", token.clone()));
        }
        let Some(results) = pyjwt_verifies(&stack.json("JWT_JWKS"), &tokens) else { return };
        for (name, ok) in results {
            let expected = if name.starts_with("old") { expect_old } else { true };
            assert_eq!(ok, expected, "{name} after {when}");
        }
    };
    check("generate-keys", true, None);
    stack.ok(&["stage", "--yes"]);
    check("stage", true, None);
    stack.ok(&["promote", "--yes", "--force"]);
    let new_session = stack.session_token();
    check("promote", true, Some(&new_session));
    stack.ok(&["rollback", "--yes"]);
    check("rollback", true, Some(&new_session));
    stack.ok(&["promote", "--yes", "--force"]);
    check("promote again", true, Some(&new_session));
    stack.ok(&["revoke", "--yes", "--force"]);
    check("revoke", false, Some(&new_session));
}
