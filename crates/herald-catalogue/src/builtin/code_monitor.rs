//! Code monitor webhook notifications (seed 000), camelCase as Sourcegraph sends them.

use serde_json::{Value, json};

use super::{builtin, root_object, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::CODE_MONITOR_NOTIFICATION as KEY;


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

pub fn definitions() -> Vec<EventTypeDef> {
    vec![builtin(
        KEY,
        "A code monitor matched new commits: their diffs or messages, with the matched byte ranges.",
        Family::CodeMonitor,
        schema(),
        EXAMPLE,
    )]
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
