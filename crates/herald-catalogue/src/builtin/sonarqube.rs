//! SonarQube analysis webhooks (seed 004).
//!
//! Required are the fields every SonarQube version sends; `revision`, `changedAt`,
//! `branch`, `qualityGate` and `properties` depend on the version, the edition and
//! the analysis. `analysedAt` is SonarQube's `+0100` offset style, so no date format.

use serde_json::{Value, json};

use super::{builtin, root_object, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::SONARQUBE_ANALYSIS as KEY;

const EXAMPLE: &str = r#"{
    "serverUrl": "http://localhost:9000",
    "taskId": "AVh21JS2JepAEhwQ-b3u",
    "status": "SUCCESS",
    "analysedAt": "2016-11-18T10:46:28+0100",
    "revision": "c739069ec7105e01303e8b3065a81141aad9f129",
    "project": {
        "key": "myproject",
        "name": "My Project",
        "url": "https://mycompany.com/sonarqube/dashboard?id=myproject"
    },
    "properties": {
    },
    "qualityGate": {
        "conditions": [
            {
                "errorThreshold": "1",
                "metric": "new_security_rating",
                "onLeakPeriod": true,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1"
            },
            {
                "errorThreshold": "1",
                "metric": "new_reliability_rating",
                "onLeakPeriod": true,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1"
            },
            {
                "errorThreshold": "1",
                "metric": "new_maintainability_rating",
                "onLeakPeriod": true,
                "operator": "GREATER_THAN",
                "status": "OK",
                "value": "1"
            },
            {
                "errorThreshold": "80",
                "metric": "new_coverage",
                "onLeakPeriod": true,
                "operator": "LESS_THAN",
                "status": "NO_VALUE"
            }
        ],
        "name": "SonarQube way",
        "status": "OK"
    }
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    vec![builtin(
        KEY,
        "A SonarQube project analysis completed (whatever its background task's status).",
        Family::SonarQube,
        schema(),
        EXAMPLE,
    )]
}

fn schema() -> Value {
    let properties = json!({
        "serverUrl": typed("string", "The SonarQube server's base URL."),
        "taskId": typed("string", "The ID of the background task."),
        "status": typed("string", "The status of the background task, e.g. SUCCESS or FAILED."),
        "analysedAt": typed("string", "When the analysis was performed."),
        "revision": typed("string", "The analysed commit."),
        "changedAt": typed("string", "When the project last changed."),
        "project": {
            "type": "object",
            "description": "The project analysed. Its key is also sent in the X-SonarQube-Project header.",
            "properties": {
                "key": typed("string", "The project key."),
                "name": typed("string", "The project name."),
                "url": typed("string", "The project's dashboard URL."),
            },
            "required": ["key", "name"],
        },
        "branch": {
            "type": "object",
            "description": "The branch or pull request analysed (editions with branch analysis).",
            "properties": {
                "name": typed("string", "The branch name, or the pull request key."),
                "type": typed("string", "BRANCH or PULL_REQUEST."),
                "isMain": typed("boolean", "Whether this is the main branch."),
                "url": typed("string", "The branch's dashboard URL."),
            },
            "required": ["name", "type", "isMain"],
        },
        "qualityGate": {
            "type": "object",
            "description": "Each Quality Gate condition checked, and the gate's status.",
            "properties": {
                "name": typed("string", "The Quality Gate's name."),
                "status": typed("string", "The gate's status: OK or ERROR."),
                "conditions": {"type": "array", "items": condition_schema()},
            },
            "required": ["name", "status"],
        },
        "properties": {
            "type": "object",
            "description": "User-specified `sonar.analysis.*` properties.",
            "additionalProperties": {"type": "string"},
        },
    });
    root_object(
        KEY,
        "A SonarQube analysis webhook payload.",
        properties,
        &["serverUrl", "taskId", "status", "analysedAt", "project"],
    )
}

fn condition_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "metric": typed("string", "The metric key, e.g. new_coverage."),
            "operator": typed("string", "GREATER_THAN or LESS_THAN."),
            "value": typed("string", "The measured value; absent when there is none."),
            "status": typed("string", "OK, ERROR or NO_VALUE."),
            "onLeakPeriod": typed("boolean", "Whether the condition is on new code."),
            "errorThreshold": typed("string", "The threshold that fails the condition."),
        },
        "required": ["metric", "operator", "status"],
    })
}
