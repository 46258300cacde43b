//! Code monitor webhook notifications (seed 000), camelCase as Sourcegraph sends them,
//! and the Slack message of a monitor's Slack action (Block Kit, as Slack's incoming
//! webhooks take it).

use serde_json::{Value, json};

use super::{builtin, root_object, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::CODE_MONITOR_NOTIFICATION as KEY;
use crate::keys::CODE_MONITOR_SLACK as SLACK_KEY;

const EXAMPLE: &str = r#"{
  "monitorDescription": "My test monitor",
  "monitorURL": "https://sourcegraph.com/code-monitoring/Q29kZU1vbml0b3I6NDI=?utm_source=",
  "query": "repo:camdentest -file:id_rsa.pub BEGIN",
  "results": [
    {
      "repository": "github.com/test/test",
      "commit": "7815187511872asbasdfgasd",
      "diff": "file1.go file2.go\n@ -97,5 +97,5 @ func Test() {\n leading context\n+matched added\n-matched removed\n trailing context\n",
      "matchedDiffRanges": [
        [ 66, 73 ],
        [ 91, 98 ]
      ]
    },
    {
      "repository": "github.com/test/test",
      "commit": "7815187511872asbasdfgasd",
      "message": "summary line\n\nsample\ncommit\nmessage\n",
      "matchedMessageRanges": [
        [ 15, 19 ]
      ]
    }
  ]
}"#;

/// What herald-app's monitors build for the seed's two results (its tests pin it).
const SLACK_EXAMPLE: &str = r#"{
  "text": "Code monitor \"My test monitor\" found 2 new matches.",
  "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Code monitor *My test monitor* found *2 new matches*."}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "Diff match in `github.com/test/test` at `7815187`"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "```\nfile1.go file2.go\n@ -97,5 +97,5 @ func Test() {\n leading context\n+matched added\n-matched removed\n trailing context\n```"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "Message match in `github.com/test/test` at `7815187`"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "```\nsummary line\n\nsample\ncommit\nmessage\n```"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "<https://herald.example.com/api/v1/monitors/0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a|View the code monitor>"}}
  ]
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    vec![
        builtin(
            KEY,
            "A code monitor matched new commits: their diffs or messages, with the matched byte ranges.",
            Family::CodeMonitor,
            schema(),
            EXAMPLE,
        ),
        builtin(
            SLACK_KEY,
            "A code monitor's Slack action: a Block Kit message with the monitor's description, the number of new matches and up to 24 of them; a run with more sends several, each saying which part it is.",
            Family::CodeMonitor,
            slack_schema(),
            SLACK_EXAMPLE,
        ),
    ]
}

/// Slack's incoming webhooks take `text` (the notification's fallback) and up to
/// 50 blocks; Herald sends mrkdwn sections of at most 3000 characters.
fn slack_schema() -> Value {
    let properties = json!({
        "text": typed("string", "The message as plain text, for notifications and clients without blocks."),
        "blocks": {
            "type": "array",
            "description": "Block Kit sections: the summary, each shown result's header and code block, the link to the monitor.",
            "maxItems": 50,
            "items": {
                "type": "object",
                "properties": {
                    "type": typed("string", "The block type, `section`."),
                    "text": {
                        "type": "object",
                        "properties": {
                            "type": {"enum": ["mrkdwn", "plain_text"], "description": "How Slack renders the text."},
                            "text": {"type": "string", "maxLength": 3000, "description": "The text, with `&`, `<` and `>` escaped."},
                        },
                        "required": ["type", "text"],
                    },
                },
                "required": ["type"],
            },
        },
    });
    root_object(
        SLACK_KEY,
        "A Slack incoming-webhook message in Block Kit.",
        properties,
        &["text", "blocks"],
    )
}

fn schema() -> Value {
    let properties = json!({
        "monitorDescription": typed("string", "The description of the monitor."),
        "monitorURL": typed("string", "A link to the monitor's configuration page."),
        "query": typed("string", "The query that produced `results`."),
        "results": {
            "type": "array",
            "description": "The results that triggered this notification; absent when there are none.",
            "items": result_schema(),
        },
    });
    root_object(
        KEY,
        "A code monitor notification. Empty fields are omitted.",
        properties,
        &["monitorDescription", "monitorURL", "query"],
    )
}

/// A diff match or a commit message match: exactly one of `diff` and `message`, each
/// with its own ranges. Ranges are not required: empty fields are omitted, ranges too.
fn result_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "repository": typed("string", "The name of the repository the commit belongs to."),
            "commit": typed("string", "The hash of the matched commit."),
            "diff": typed("string", "The matching diff in unified diff format. Diff matches only."),
            "matchedDiffRanges": ranges_schema("diff"),
            "message": typed("string", "The matching commit message. Commit message matches only."),
            "matchedMessageRanges": ranges_schema("message"),
        },
        "required": ["repository", "commit"],
        "oneOf": [
            {"required": ["diff"]},
            {"required": ["message"]},
        ],
        "dependentRequired": {
            "matchedDiffRanges": ["diff"],
            "matchedMessageRanges": ["message"],
        },
    })
}

fn ranges_schema(of: &str) -> Value {
    json!({
        "type": "array",
        "description": format!("The parts of `{of}` that matched, as [start, end) UTF-8 byte offsets."),
        "items": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 2,
            "maxItems": 2,
        },
    })
}
