//! Semgrep webhooks (seed 003): scans (an object) and findings (an ARRAY).
//!
//! Only the fields issue 4 names are required. The others are typed as in the seed
//! and nullable: Semgrep leaves them out or null depending on the rule and the scan.

use serde_json::{Value, json};

use super::{DRAFT_2020_12, builtin, nullable, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::{SEMGREP_FINDINGS as FINDINGS_KEY, SEMGREP_SCAN as SCAN_KEY};

// The seed's `technology` list has a mis-encoded non-breaking space (`Â `) between
// its items, which is not JSON; it is a plain space here.
const FINDINGS_EXAMPLE: &str = r#"[
  {
    "semgrep_finding": {
      "id": "241dbe518caf15f800131d2d0c70bf08",
      "ref": "refs/pull/2658/merge",
      "start_date": "None",
      "check_id": "log-exc-info",
      "path": "server/semgrep_app/handlers/registry.py",
      "line": 185,
      "column": 9,
      "message": "Error messages should be logged with `exc_info=True` in order to propagate\nstack information to Sentry. Either change the logging level or raise an Exception.\n",
      "severity": 1,
      "index": 0,
      "end_line": 187,
      "end_column": 10,
      "commit_date": "2021-06-07T15:26:35+03:00",
      "first_seen_scan_id": "xnkPGY8VL20o",
      "category": "security",
      "cwe": "CWE-319: Cleartext Transmission of Sensitive Information",
      "license": "Commons Clause License Condition v1.0[LGPL-2.1-only]",
      "owasp": "A3: Sensitive Data Exposure",
      "references": ["https://tomcat.apache.org/tomcat-5.5-doc/servletapi/"],
      "source": "https://semgrep.dev/r/java.servlets.security.cookie-issecure-false.cookie-issecure-false",
      "technology": ["servlet", "tomcat"],
      "vulnerability": "Insecure Transport",
      "metadata": {
        "dev.semgrep.actions": [],
        "semgrep.policy": {
          "id": 8168,
          "name": "Web Apps Notify Only",
          "slug": "web-apps-notify-only"
        },
        "semgrep.url": "https://semgrep.dev/s/johndoe:log-exc-info"
      }
    }
  }
]"#;

const SCAN_EXAMPLE: &str = r#"{
  "semgrep_scan": {
    "deployment_id": 1,
    "started_at": "2021-09-21T23:49:17.480929+00:00",
    "completed_at": null,
    "exit_code": null,
    "repository": "returntocorp/semgrep-app",
    "ci_job_url": "https://github.com/returntocorp/semgrep-app/actions/runs/1236121005",
    "environment": "",
    "commit": "e22f08e8e871bde8c100b3a4a6f8e9387d651223",
    "commit_committer_email": "",
    "commit_timestamp": "",
    "commit_author_email": "support@semgrep.com",
    "commit_author_name": "Semgrep User",
    "commit_author_username": "semgrepuser",
    "commit_author_image_url": "https://avatars.githubusercontent.com/u/29760937?s=200&v=4",
    "commit_authored_timestamp": "",
    "commit_title": "fixup",
    "config": "",
    "on": "pull_request",
    "branch": "refs/pull/3483/merge",
    "pull_request_timestamp": "",
    "pull_request_author_username": "semgrepuser",
    "pull_request_author_image_url": "https://avatars.githubusercontent.com/u/29760937?s=200&v=4",
    "pull_request_id": "3483",
    "pull_request_title": "test bad commit",
    "ignored_files": ["/server/semgrep_app/templates/"],
    "id": "xnkPGY8VL20o"
  }
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    vec![
        builtin(
            SCAN_KEY,
            "A Semgrep scan: which repository, commit and CI job it ran for.",
            Family::Semgrep,
            scan_schema(),
            SCAN_EXAMPLE,
        ),
        builtin(
            FINDINGS_KEY,
            "Semgrep findings of a scan. The payload is an array.",
            Family::Semgrep,
            findings_schema(),
            FINDINGS_EXAMPLE,
        ),
    ]
}

fn scan_schema() -> Value {
    let scan = json!({
        "type": "object",
        "properties": {
            "deployment_id": nullable("integer", "The Semgrep deployment."),
            "started_at": nullable("string", "When the scan started."),
            "completed_at": nullable("string", "When the scan completed; null while it runs."),
            "exit_code": nullable("integer", "The scan's exit code; null while it runs."),
            "repository": typed("string", "The repository scanned, e.g. owner/name."),
            "ci_job_url": nullable("string", "The CI job that ran the scan."),
            "environment": nullable("string", "The CI environment."),
            "commit": typed("string", "The commit scanned."),
            "commit_committer_email": nullable("string", "The committer's email."),
            "commit_timestamp": nullable("string", "When the commit was made."),
            "commit_author_email": nullable("string", "The commit author's email."),
            "commit_author_name": nullable("string", "The commit author's name."),
            "commit_author_username": nullable("string", "The commit author's username."),
            "commit_author_image_url": nullable("string", "The commit author's avatar."),
            "commit_authored_timestamp": nullable("string", "When the commit was authored."),
            "commit_title": nullable("string", "The commit's title."),
            "config": nullable("string", "The Semgrep configuration used."),
            "on": nullable("string", "What triggered the scan, e.g. push or pull_request."),
            "branch": nullable("string", "The ref scanned."),
            "pull_request_timestamp": nullable("string", "When the pull request was opened."),
            "pull_request_author_username": nullable("string", "The pull request author's username."),
            "pull_request_author_image_url": nullable("string", "The pull request author's avatar."),
            "pull_request_id": nullable("string", "The pull request number."),
            "pull_request_title": nullable("string", "The pull request's title."),
            "ignored_files": {"type": ["array", "null"], "items": {"type": "string"}, "description": "Paths the scan ignored."},
            "id": typed("string", "The scan's ID."),
        },
        "required": ["repository", "commit", "id"],
    });
    json!({
        "$schema": DRAFT_2020_12,
        "title": SCAN_KEY,
        "description": "A Semgrep scan, wrapped in `semgrep_scan`.",
        "type": "object",
        "properties": {"semgrep_scan": scan},
        "required": ["semgrep_scan"],
    })
}

fn findings_schema() -> Value {
    let finding = json!({
        "type": "object",
        "properties": {
            "id": typed("string", "The finding's ID."),
            "ref": nullable("string", "The ref scanned."),
            "start_date": nullable("string", "When the finding was first seen."),
            "check_id": typed("string", "The rule that matched."),
            "path": typed("string", "The file, relative to the repository root."),
            "line": typed("integer", "The first line of the match."),
            "column": nullable("integer", "The first column of the match."),
            "message": nullable("string", "The rule's message."),
            "severity": typed("integer", "The rule's severity: 0 info, 1 warning, 2 error."),
            "index": nullable("integer", "Distinguishes identical matches in one file."),
            "end_line": nullable("integer", "The last line of the match."),
            "end_column": nullable("integer", "The last column of the match."),
            "commit_date": nullable("string", "When the matched commit was made."),
            "first_seen_scan_id": nullable("string", "The scan that first found it."),
            "category": nullable("string", "The rule's category, e.g. security."),
            "cwe": string_or_strings("The CWE entries of the rule."),
            "license": nullable("string", "The rule's license."),
            "owasp": string_or_strings("The OWASP categories of the rule."),
            "references": nullable_strings("Links about the rule."),
            "source": nullable("string", "The rule's page."),
            "technology": nullable_strings("Technologies the rule is about."),
            "vulnerability": nullable("string", "The vulnerability class."),
            "metadata": nullable("object", "The rule's other metadata."),
        },
        "required": ["check_id", "path", "line", "severity", "id"],
    });
    json!({
        "$schema": DRAFT_2020_12,
        "title": FINDINGS_KEY,
        "description": "Semgrep findings: an array of objects each wrapping one `semgrep_finding`.",
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"semgrep_finding": finding},
            "required": ["semgrep_finding"],
        },
    })
}

fn nullable_strings(description: &str) -> Value {
    json!({"type": ["array", "null"], "items": {"type": "string"}, "description": description})
}

/// The seed shows one string; Semgrep rules may also list several.
fn string_or_strings(description: &str) -> Value {
    json!({"type": ["string", "array", "null"], "items": {"type": "string"}, "description": description})
}
