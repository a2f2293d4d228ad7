//! Step 8 of a rotation: what happened, for people (`text`) and for machines (`json`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plan::{Plan, SkipReason};
use super::transaction::Applied;
use crate::db::LoginResult;
use crate::stack::services::HOLDING_DB_PASSWORD;

/// How a leftover pending file was settled at the start of the run.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovery {
    /// The interrupted rotation had committed; this run only published and verified it.
    FinishedInterruptedRotation,
    /// It had not committed; its pending file was discarded before this rotation.
    DiscardedUncommittedPending,
    /// `--dry-run`: the interrupted rotation had committed; a real run would publish its
    /// pending file and stop.
    WouldFinishInterruptedRotation,
    /// `--dry-run`: it had not committed; a real run would discard its pending file after the
    /// confirmation.
    WouldDiscardUncommittedPending,
}

/// Milliseconds spent in each phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    /// Start to plan ready (lock, connect, discover, hash).
    pub plan_ms: f64,
    /// `BEGIN` to `COMMIT`; null when this run ran no transaction (a dry run, a run that only
    /// finished an interrupted one) or the answer to `COMMIT` was lost and the outcome had to be
    /// asked of the database.
    pub transaction_ms: Option<f64>,
    /// The login test of every LOGIN role.
    pub verify_ms: f64,
    /// The whole run.
    pub total_ms: f64,
}

/// What happened to one role (serialised as the stable kebab-case strings scripts match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Its password changed.
    Rotated,
    /// `--dry-run`: its password would change.
    Planned,
    /// It does not exist in this cluster.
    SkippedAbsent,
    /// It exists and was deliberately not touched (no password, or its own).
    LeftAlone,
}

/// One role and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleOutcome {
    /// The role.
    pub role: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether this was `--dry-run`.
    pub dry_run: bool,
    /// How a leftover pending file was settled, if there was one.
    pub recovery: Option<Recovery>,
    /// The `.env` involved.
    pub env_file: PathBuf,
    /// The plan (absent when the run only finished an interrupted rotation).
    pub plan: Option<Plan>,
    /// Every role and its outcome.
    pub roles: Vec<RoleOutcome>,
    /// Analytics rows whose URL now has the new password.
    pub analytics_rows_updated: Option<u64>,
    /// Postgres analytics rows left alone: not the stack's own (another server's, another
    /// role's) or naming no user. The plan names each.
    pub analytics_rows_without_user: u64,
    /// Whether `_supavisor` was reset.
    pub supavisor_reset: bool,
    /// The login test of every LOGIN role.
    pub verification: Vec<LoginResult>,
    /// The command that recreates the services holding the password.
    pub restart_command: String,
    /// Timings in milliseconds.
    pub timings: Timings,
}

/// `docker compose up -d --force-recreate <services>`.
pub fn restart_command() -> String {
    format!("docker compose up -d --force-recreate {}", HOLDING_DB_PASSWORD.join(" "))
}

fn role_outcomes(plan: &Plan, done: Outcome) -> Vec<RoleOutcome> {
    let changed = plan.roles_to_change.iter().map(|r| RoleOutcome { role: (*r).to_owned(), outcome: done });
    let skipped = plan.skipped.iter().map(|s| RoleOutcome {
        role: s.role.to_owned(),
        outcome: match s.reason {
            SkipReason::Absent => Outcome::SkippedAbsent,
            SkipReason::NoPasswordByDesign | SkipReason::OwnPassword => Outcome::LeftAlone,
        },
    });
    changed.chain(skipped).collect()
}

impl Report {
    /// A report with every outcome empty (no plan, no role, no row, no login): what the
    /// constructors below fill in.
    fn empty(dry_run: bool, recovery: Option<Recovery>, env_file: &Path, timings: Timings) -> Self {
        Report {
            dry_run,
            recovery,
            env_file: env_file.to_owned(),
            plan: None,
            roles: Vec::new(),
            analytics_rows_updated: None,
            analytics_rows_without_user: 0,
            supavisor_reset: false,
            verification: Vec::new(),
            restart_command: restart_command(),
            timings,
        }
    }

    /// `--dry-run`: the plan, nothing done.
    pub fn dry_run(plan: &Plan, recovery: Option<Recovery>, plan_ms: f64, total_ms: f64) -> Self {
        let timings = Timings { plan_ms, transaction_ms: None, verify_ms: 0.0, total_ms };
        Report {
            plan: Some(plan.clone()),
            roles: role_outcomes(plan, Outcome::Planned),
            ..Report::empty(true, recovery, &plan.env_file, timings)
        }
    }

    /// A committed, published and verified rotation.
    pub fn applied(
        plan: &Plan,
        recovery: Option<Recovery>,
        applied: &Applied,
        verification: Vec<LoginResult>,
        timings: Timings,
    ) -> Self {
        Report {
            plan: Some(plan.clone()),
            roles: role_outcomes(plan, Outcome::Rotated),
            analytics_rows_updated: Some(applied.analytics_rows_updated),
            analytics_rows_without_user: applied.analytics_rows_without_user,
            supavisor_reset: applied.supavisor_reset,
            verification,
            ..Report::empty(false, recovery, &plan.env_file, timings)
        }
    }

    /// A run that only finished a rotation an interrupted run had committed.
    pub fn recovered(env_file: &Path, verification: Vec<LoginResult>, verify_ms: f64, total_ms: f64) -> Self {
        let timings = Timings { plan_ms: 0.0, transaction_ms: None, verify_ms, total_ms };
        Report { verification, ..Report::empty(false, Some(Recovery::FinishedInterruptedRotation), env_file, timings) }
    }

    /// `--dry-run` with a pending file whose rotation committed: a real run would only publish it.
    pub fn would_finish(env_file: &Path, total_ms: f64) -> Self {
        let timings = Timings { plan_ms: 0.0, transaction_ms: None, verify_ms: 0.0, total_ms };
        Report::empty(true, Some(Recovery::WouldFinishInterruptedRotation), env_file, timings)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        text.push('\n');
        text
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        if self.dry_run {
            return self.dry_run_text();
        }
        let mut out = String::new();
        match self.recovery {
            Some(Recovery::FinishedInterruptedRotation) => out.push_str(&format!(
                "Finished an interrupted rotation: {} now holds the password the database has.\n",
                self.env_file.display()
            )),
            // Said on stderr when it happened, with why; once is enough.
            Some(
                Recovery::DiscardedUncommittedPending
                | Recovery::WouldFinishInterruptedRotation
                | Recovery::WouldDiscardUncommittedPending,
            )
            | None => {}
        }
        if let Some(plan) = &self.plan {
            out.push_str(&self.changes_text(plan));
        }
        out.push_str(&self.verification_text());
        out.push_str(&format!(
            "Restart the services that hold the password, from the stack's directory:\n  {}\n",
            self.restart_command
        ));
        out
    }

    /// A dry run's report: the plan and what a real run would do with a pending file.
    fn dry_run_text(&self) -> String {
        let mut out = String::new();
        if let Some(plan) = &self.plan {
            out.push_str(&plan.to_text());
        }
        match self.recovery {
            Some(Recovery::WouldFinishInterruptedRotation) => out.push_str(&format!(
                "A real run would publish the pending file of an interrupted rotation that had committed over {} \
                 (no second rotation).\n",
                self.env_file.display()
            )),
            Some(Recovery::WouldDiscardUncommittedPending) => out.push_str(
                "A real run would discard the pending file of an interrupted rotation that never committed, \
                 after the confirmation.\n",
            ),
            _ => {}
        }
        out.push_str("Dry run: nothing was changed.\n");
        out
    }

    /// What the transaction changed: the roles, the `.env`'s keys, the skipped roles, the
    /// analytics rows and Supavisor.
    fn changes_text(&self, plan: &Plan) -> String {
        let mut out = String::new();
        let window = match self.timings.transaction_ms {
            Some(ms) => format!("{ms:.1} ms"),
            None => "its COMMIT confirmed afterwards".to_owned(),
        };
        out.push_str(&format!(
            "Rotated the password of {} role(s) in one transaction ({window}); {} rewritten: {}.\n",
            plan.roles_to_change.len(),
            self.env_file.display(),
            plan.env_keys.join(", ")
        ));
        for skipped in &plan.skipped {
            out.push_str(&format!("  {}: {}\n", skipped.role, skipped.reason.describe()));
        }
        if let Some(rows) = self.analytics_rows_updated {
            if plan.analytics_rows.is_some() {
                out.push_str(&format!("  analytics: {rows} source backend URL(s) updated\n"));
            }
            for left in &plan.analytics_left_alone {
                out.push_str(&format!("  analytics: {} left alone ({})\n", left.key, left.why));
            }
        }
        if self.supavisor_reset {
            out.push_str("  supavisor: _supavisor reset; supavisor re-seeds it on restart\n");
        }
        out
    }

    /// Which LOGIN roles log in with the new password, and why the others do not.
    fn verification_text(&self) -> String {
        let mut out = String::new();
        let ok = self.verification.iter().filter(|r| r.ok).count();
        out.push_str(&format!(
            "Verification: {ok} of {} LOGIN role(s) log in with the new password.\n",
            self.verification.len()
        ));
        for role in self.plan.iter().flat_map(|plan| &plan.cannot_log_in) {
            out.push_str(&format!("  {}: not verified, it cannot log in now ({})\n", role.role, role.why));
        }
        for failed in self.verification.iter().filter(|r| !r.ok) {
            out.push_str(&format!(
                "  {}: FAILED ({})\n",
                failed.role,
                failed.error.as_deref().unwrap_or("no reason given")
            ));
        }
        out
    }
}
